"""The demo's study plan: disjoint XNLI lines, intermediate-task data, profiles."""

from __future__ import annotations

from pathlib import Path

import pytest

from xcal.demo.data import INTERMEDIATE_TASKS, SINGLE_TASKS, intermediate_data, task_texts
from xcal.demo.experiment import PROFILES, get_profile, with_overrides
from xcal.demo.heads import ChoiceData, SpanData, TokenData


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_training_and_evaluation_lines_are_disjoint_premise_groups(name: str) -> None:
    train, evaluate = get_profile(name).line_ranges(2490)
    assert set(train).isdisjoint(evaluate)
    # XNLI dev repeats each premise on three consecutive lines: no group is split.
    assert {i // 3 for i in train}.isdisjoint({i // 3 for i in evaluate})
    assert len(evaluate) == get_profile(name).eval_examples


def test_the_full_study_evaluates_600_clean_and_300_perturbed_lines() -> None:
    full = get_profile("full")
    assert full.eval_examples >= 600 and full.perturbed_examples >= 300
    assert full.qa_examples > 0 and full.mlqa_examples > 0  # question 2 on XQuAD and MLQA
    # word order on both QA sets, clause order on MLQA (answer spans kept)
    assert "word_shuffle:0.5" in full.qa_perturbations
    assert "clause_swap:1.0" in full.mlqa_perturbations
    assert set(full.intermediate) == set(INTERMEDIATE_TASKS) and len(full.intermediate) >= 5


def test_evaluation_lines_share_premises_with_nothing_trained_on(xtreme_dir: Path) -> None:
    from xcal.tasks import get_task

    english = get_task("xnli").load(xtreme_dir, "en", "dev")
    train, evaluate = get_profile("full").line_ranges(len(english))
    trained = {english[i].premise for i in train}
    assert not trained & {english[i].premise for i in evaluate}


def test_profiles_that_do_not_fit_are_refused() -> None:
    big = with_overrides(get_profile("ci"), train_groups=800, eval_examples=300)
    with pytest.raises(ValueError, match="exceed the 2490 lines"):
        big.line_ranges(2490)
    ragged = with_overrides(get_profile("ci"), eval_examples=31)
    with pytest.raises(ValueError, match="multiple of 3"):
        ragged.line_ranges(2490)
    with pytest.raises(ValueError, match="unknown demo profile 'huge'; known: full, ci"):
        get_profile("huge")
    with pytest.raises(ValueError, match="unknown intermediate task"):
        with_overrides(get_profile("ci"), intermediate=("mnli",))
    with pytest.raises(ValueError, match="QA target"):
        with_overrides(get_profile("ci"), qa_intermediate=("tydiqa",))
    with pytest.raises(ValueError, match="not intermediate tasks"):
        with_overrides(get_profile("ci"), intermediate=("pawsx",), qa_intermediate=("panx",))
    with pytest.raises(ValueError, match="perturbed_examples"):
        with_overrides(get_profile("ci"), perturbed_examples=90)


def test_xcopa_is_multiple_choice_with_its_own_labels(xtreme_dir: Path) -> None:
    from xcal.tasks import get_task

    data = intermediate_data("xcopa", xtreme_dir, 10_000)
    examples = [
        *get_task("xcopa").load(xtreme_dir, "en", "train"),
        *get_task("xcopa").load(xtreme_dir, "en", "val"),
    ]
    assert isinstance(data, ChoiceData) and len(data.labels) == len(examples) == 500
    for k, ex in enumerate(examples):
        assert data.choices[k] == (ex.choice1, ex.choice2)
        assert data.labels[k] == ex.label
        assert data.contexts[k].startswith(ex.premise)
        assert data.contexts[k].endswith("cause?" if ex.question == "cause" else "result?")


def test_pawsx_keeps_its_labels(xtreme_dir: Path) -> None:
    from xcal.tasks import get_task

    data = intermediate_data("pawsx", xtreme_dir, 50)
    gold = get_task("pawsx").load(xtreme_dir, "en", "dev")[:50]
    assert list(data.labels) == [e.label for e in gold]  # type: ignore[union-attr]
    assert data.label_names == tuple(get_task("pawsx").label_names)  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="unknown intermediate task 'mnli'"):
        intermediate_data("mnli", xtreme_dir, 5)


def test_tydiqa_answers_sit_at_their_offsets(xtreme_dir: Path) -> None:
    data = intermediate_data("tydiqa", xtreme_dir, 300)
    assert isinstance(data, SpanData) and data.n_items == 300
    for context, start, text in zip(
        data.contexts, data.answer_starts, data.answer_texts, strict=True
    ):
        assert context[start : start + len(text)] == text


def test_panx_sentences_keep_one_tag_per_word(xtreme_dir: Path) -> None:
    from xcal.tasks.tagging import PANX_TAGS, read_tagged

    data = intermediate_data("panx", xtreme_dir, 200)
    raw = read_tagged(xtreme_dir / "panx" / "train-en.tsv", limit=200)
    assert isinstance(data, TokenData) and data.n_items == 200
    assert [tuple(w) for w in data.words] == [s.words for s in raw]
    assert [tuple(PANX_TAGS[t] for t in tags) for tags in data.tags] == [s.tags for s in raw]
    assert {t for tags in data.tags for t in tags} == set(range(len(PANX_TAGS)))


def test_the_mix_draws_its_texts_evenly_from_every_task(xtreme_dir: Path) -> None:
    texts = task_texts("mix", xtreme_dir, 40)
    per_task = {t: task_texts(t, xtreme_dir, 40) for t in SINGLE_TASKS}
    assert len(texts) == 40
    for task in SINGLE_TASKS:
        assert sum(t in per_task[task] for t in texts) == 10, task


def test_intermediate_stages_take_their_own_epochs_and_length() -> None:
    full = get_profile("full")
    assert full.intermediate_epochs is not None
    assert full.intermediate_train.epochs == full.intermediate_epochs
    assert full.intermediate_train.learning_rate == full.train.learning_rate
    assert full.intermediate_train.max_length == full.span_max_length
    same = with_overrides(full, intermediate_epochs=None)
    assert same.intermediate_train.epochs == full.train.epochs
