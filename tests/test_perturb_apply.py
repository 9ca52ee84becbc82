"""Task-aware application: pairs, QA contexts with answer spans, retrieval queries, manifests."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

import pytest
from _perturb_samples import tatoeba_lines, xnli_rows, xquad_items, xquad_languages

from xcal.perturb import (
    apply_to_example,
    apply_to_examples,
    get_perturbation,
    manifest_fields,
    perturb_context,
    perturbation_names,
)
from xcal.store import RunManifest
from xcal.tasks import PairExample, QAAnswer, QAExample, RetrievalExample

NAMES = [n for n in perturbation_names() if n != "code_switch"]


@dataclass(frozen=True)
class DictQA:
    """A QA example shaped like raw SQuAD JSON: answers are dicts."""

    example_id: str
    language: str
    question: str
    context: str
    answers: list[dict]
    text_fields = ("question", "context")


def _pairs(lang: str) -> list[PairExample]:
    return [
        PairExample(
            f"xnli-dev-{i:06d}", lang, p, h, ["contradiction", "entailment", "neutral"].index(lab)
        )
        for i, (p, h, lab) in enumerate(xnli_rows(lang)[:20])
    ]


@pytest.mark.parametrize("lang", ["en", "de", "zh", "th", "ar", "hi"])
def test_pairs_either_or_both_sides_labels_unchanged(lang: str) -> None:
    examples = _pairs(lang)
    only_premise = apply_to_examples(examples, "word_shuffle", 1.0, seed=1, fields=("premise",))
    both = apply_to_examples(examples, "word_shuffle", 1.0, seed=1)  # task default: both
    assert only_premise.n_dropped == both.n_dropped == 0
    for ex, a, b in zip(examples, only_premise.examples, both.examples, strict=True):
        assert (a.example_id, a.language, a.label) == (ex.example_id, ex.language, ex.label)
        assert (b.example_id, b.language, b.label) == (ex.example_id, ex.language, ex.label)
        assert a.hypothesis == ex.hypothesis
        assert b.premise == a.premise  # the premise stream does not depend on other fields
    assert (
        sum(a.premise != ex.premise for ex, a in zip(examples, only_premise.examples, strict=True))
        > 10
    )
    assert (
        sum(b.hypothesis != ex.hypothesis for ex, b in zip(examples, both.examples, strict=True))
        > 5
    )


def test_the_two_sides_of_a_pair_get_different_streams() -> None:
    text = "one two three four five six seven eight nine ten"
    ex = PairExample("x-1", "en", text, text, 0)
    new = apply_to_example(ex, "word_shuffle", 1.0, seed=0)
    assert new is not None and new.premise != new.hypothesis


def test_severity_zero_returns_the_example_unchanged() -> None:
    ex = _pairs("fr")[0]
    assert apply_to_example(ex, "char_noise", 0.0, seed=5) == ex


def _qa_examples(lang: str, n: int) -> list[QAExample]:
    return [
        QAExample(
            item["id"],
            lang,
            item["context"],
            item["question"],
            tuple(QAAnswer(a["text"], a["answer_start"]) for a in item["answers"]),
        )
        for item in xquad_items(lang)[:n]
    ]


@pytest.mark.parametrize("lang", xquad_languages())
def test_qa_context_keeps_every_answer_findable(lang: str) -> None:
    examples = _qa_examples(lang, 6)
    n_changed = 0
    for name in NAMES:
        for severity in (0.5, 1.0):
            result = apply_to_examples(examples, name, severity, seed=2, fields=("context",))
            assert result.n_dropped == 0, (name, result.dropped_ids)
            for ex, new in zip(examples, result.examples, strict=True):
                assert new.question == ex.question and new.example_id == ex.example_id
                assert [a.text for a in new.answers] == [a.text for a in ex.answers]
                for a in new.answers:
                    assert new.context[a.answer_start : a.answer_start + len(a.text)] == a.text
                n_changed += new.context != ex.context
    assert n_changed > len(NAMES) * 2  # most perturbations change most contexts


def test_qa_answers_as_dicts_and_question_only() -> None:
    item = xquad_items("de")[0]
    ex = DictQA(item["id"], "de", item["question"], item["context"], item["answers"])
    new = apply_to_example(ex, "ngram_shuffle", 1.0, seed=4, fields=("context",))
    assert new is not None
    assert isinstance(new.answers, list) and isinstance(new.answers[0], dict)
    for a in new.answers:
        assert new.context[a["answer_start"] : a["answer_start"] + len(a["text"])] == a["text"]
    question_only = apply_to_example(ex, "ngram_shuffle", 1.0, seed=4, fields=("question",))
    assert question_only is not None
    assert question_only.context == ex.context and question_only.answers == ex.answers
    assert question_only.question != ex.question
    default = apply_to_example(ex, "ngram_shuffle", 1.0, seed=4)  # text_fields attribute
    assert default is not None and default.question == question_only.question


def test_qa_answer_that_cannot_be_kept_is_dropped_and_counted() -> None:
    good = _qa_examples("en", 3)
    bad = dataclasses.replace(good[1], answers=(QAAnswer("not in the context", 5),))
    result = apply_to_examples(
        [good[0], bad, good[2]], "word_shuffle", 0.5, seed=0, fields=("context",)
    )
    assert result.n_dropped == 1 and result.dropped_ids == [bad.example_id]
    assert [e.example_id for e in result.examples] == [good[0].example_id, good[2].example_id]
    # Perturbing only the question cannot lose an answer: nothing is dropped.
    result = apply_to_examples([bad], "word_shuffle", 0.5, seed=0, fields=("question",))
    assert result.n_dropped == 0


def test_overlapping_answers_share_one_frozen_region() -> None:
    context = "Alpha beta gamma delta epsilon zeta eta theta iota kappa."
    answers = [
        {"text": "gamma delta", "answer_start": 11},
        {"text": "delta epsilon", "answer_start": 17},
        {"text": "kappa", "answer_start": 51},
    ]
    p = get_perturbation("word_shuffle")
    result = perturb_context(
        context, answers, p, language="en", severity=1.0, seed=0, example_id="q"
    )
    assert result is not None
    new_context, new_answers = result
    for a in new_answers:
        assert new_context[a["answer_start"] : a["answer_start"] + len(a["text"])] == a["text"]
    assert "gamma delta epsilon" in new_context


def test_retrieval_perturbs_queries_only() -> None:
    lines = tatoeba_lines("jpn")[:10]
    examples = [
        RetrievalExample(f"tatoeba-{i:06d}", "jpn", q, (f"tatoeba-{i:06d}",))
        for i, q in enumerate(lines)
    ]
    result = apply_to_examples(examples, "transliterate", 1.0, seed=0)  # task default: the query
    for ex, new in zip(examples, result.examples, strict=True):
        assert new.gold_ids == ex.gold_ids
        assert new.query.isascii() and new.query != ex.query


def test_sequence_fields_are_perturbed_item_by_item() -> None:
    @dataclass(frozen=True)
    class Choices:
        example_id: str
        language: str
        choices: tuple[str, ...]
        label: int

    ex = Choices("c1", "en", ("The man fell asleep.", "The man woke up early."), 1)
    new = apply_to_example(ex, "lowercase", 1.0, seed=0, fields=("choices",))
    assert new is not None and new.choices == ("the man fell asleep.", "the man woke up early.")
    assert new.label == 1


def test_bad_inputs_name_the_problem() -> None:
    ex = _pairs("en")[0]
    with pytest.raises(ValueError, match="no field"):
        apply_to_example(ex, "word_shuffle", 0.5, fields=("sentence",))
    with pytest.raises(ValueError, match="severity"):
        apply_to_example(ex, "word_shuffle", 1.5)
    with pytest.raises(KeyError, match="unknown perturbation 'shuffle'"):
        apply_to_example(ex, "shuffle", 0.5)

    @dataclass(frozen=True)
    class NoLanguage:
        example_id: str
        text: str

    with pytest.raises(ValueError, match="language="):
        apply_to_example(NoLanguage("a", "b c"), "word_shuffle", 0.5, fields=("text",))
    assert apply_to_example(
        NoLanguage("a", "b c"), "lowercase", 0.5, fields=("text",), language="en"
    )
    with pytest.raises(ValueError, match="pass fields="):
        apply_to_example(NoLanguage("a", "b c"), "word_shuffle", 0.5, language="en")
    with pytest.raises(TypeError, match="expected str"):
        apply_to_example(ex, "word_shuffle", 0.5, fields=("label",))


def test_manifest_fields_fill_a_run_manifest() -> None:
    fields = manifest_fields(
        "function_word_drop", language="zh", severity=0.3, seed=9, fields=("premise",)
    )
    manifest = RunManifest(
        model="m", task="xnli", split="dev", language="zh", record_kind="classification",
        input_fingerprint="f", n_examples=1, **fields,
    )  # fmt: skip
    assert manifest.perturbation == "function_word_drop"
    assert manifest.severity == 0.3 and manifest.perturbation_seed == 9
    params = manifest.perturbation_params
    assert params["segmenter"].startswith("icu-")
    assert params["stopwords"] == "xcal-closed-class-1"
    assert params["fields"] == ["premise"]
    json.dumps(params)  # serialisable
    other = manifest_fields(
        "function_word_drop", language="zh", severity=0.3, seed=9, fields=("hypothesis",)
    )
    assert other["perturbation_params"] != params  # different fields are different runs
