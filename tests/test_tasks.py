"""Task readers: the real XTREME sample, and clear errors on broken files."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xcal.tasks import (
    ChoiceExample,
    MissingDataError,
    PairExample,
    QAExample,
    RetrievalExample,
    TaskDataError,
    UnknownTaskError,
    example_texts,
    get_task,
    task_names,
)

# --------------------------------------------------------------------------- registry


def test_registry_lists_every_task_family() -> None:
    assert set(task_names()) >= {"xnli", "pawsx", "xquad", "mlqa", "tydiqa", "tatoeba", "xcopa"}
    kinds = {name: get_task(name).record_kind for name in task_names()}
    assert kinds["xnli"] == kinds["pawsx"] == "classification"
    assert kinds["xquad"] == kinds["mlqa"] == kinds["tydiqa"] == "qa"
    assert kinds["tatoeba"] == "retrieval"
    assert kinds["bucc2018"] == "mining"
    assert kinds["xcopa"] == "multiple_choice"


def test_unknown_task_lists_known() -> None:
    with pytest.raises(
        UnknownTaskError, match=r"unknown task 'squad' \(did you mean 'xquad'\?\); known: .*xnli"
    ):
        get_task("squad")


def test_duplicate_registration_refused() -> None:
    from xcal.tasks.registry import TASKS

    with pytest.raises(ValueError, match="already registered"):
        TASKS.add("xnli", get_task("xnli"))


# --------------------------------------------------------------------------- real data


def test_xnli_real_parallel_ids_and_labels(xtreme_dir: Path) -> None:
    task = get_task("xnli")
    assert {"de", "en", "sw", "zh"} <= set(task.languages(xtreme_dir))
    en = task.load(xtreme_dir, "en")
    de = task.load(xtreme_dir, "de")
    assert len(en) == len(de) == 2490
    assert [e.example_id for e in en] == [e.example_id for e in de]
    assert en[123].example_id == "xnli-dev-000123"
    # Parallel data: the same gold label on the same line in every language.
    assert [e.label for e in en] == [e.label for e in de]
    assert isinstance(de[0], PairExample) and de[0].language == "de"
    assert de[0].premise.startswith("und er hat gesagt")
    assert {e.label for e in en} == {0, 1, 2}


def test_pawsx_real(xtreme_dir: Path) -> None:
    task = get_task("pawsx")
    ex = task.load(xtreme_dir, "ja")
    assert len(ex) == 2000 and ex[0].example_id == "pawsx-dev-000000"
    assert {e.label for e in ex} == {0, 1}


def test_xquad_real_ids_shared_across_languages(xtreme_dir: Path) -> None:
    task = get_task("xquad")
    en, th = task.load(xtreme_dir, "en"), task.load(xtreme_dir, "th")
    assert len(en) == len(th) == 1190
    assert [e.example_id for e in en] == [e.example_id for e in th]
    for ex in en[:50] + th[:50]:
        assert isinstance(ex, QAExample)
        for a in ex.answers:
            assert ex.context[a.answer_start : a.answer_start + len(a.text)] == a.text


def test_xquad_paragraph_units_are_shared_across_languages(xtreme_dir: Path) -> None:
    # Counted from the JSON itself: a unit per paragraph, named by its smallest question id.
    raw = json.loads((xtreme_dir / "xquad" / "xquad.en.json").read_text(encoding="utf-8"))
    paragraphs = [[qa["id"] for qa in p["qas"]] for art in raw["data"] for p in art["paragraphs"]]
    expected = {qid: min(ids) for ids in paragraphs for qid in ids}
    assert len(paragraphs) == 240
    task = get_task("xquad")
    for language in ("en", "de", "zh"):
        units = {e.example_id: e.unit for e in task.load(xtreme_dir, language)}
        assert units == expected, language
    # the unit does not enter the run's fingerprint (it follows from ids and contexts)
    assert "unit" not in example_texts(task.load(xtreme_dir, "en")[0])


def test_mlqa_and_tydiqa_real(xtreme_dir: Path) -> None:
    assert get_task("mlqa").languages(xtreme_dir) == ["ar", "de", "en", "es", "hi", "vi", "zh"]
    assert len(get_task("mlqa").load(xtreme_dir, "de")) == 512
    tydi = get_task("tydiqa")
    assert "te" in tydi.languages(xtreme_dir)
    # This distribution of TyDiQA-GoldP dev has empty answers: kept as "no gold", with a warning.
    with pytest.warns(UserWarning, match="no gold answer text"):
        bn = tydi.load(xtreme_dir, "bn")
    assert len(bn) == 113 and all(ex.answers == () for ex in bn)
    # The English train file repeats question ids per article: made unique, deterministically.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        train = tydi.load(xtreme_dir, "en", "train")
    ids = [e.example_id for e in train]
    assert len(ids) == len(set(ids)) == 3696
    assert ids[:1] == ["12"] and "0#1" in ids


def test_tatoeba_real(xtreme_dir: Path) -> None:
    task = get_task("tatoeba")
    langs = task.languages(xtreme_dir)
    assert {"deu", "fra", "cmn"} <= set(langs) and len(langs) == 112
    queries = task.load(xtreme_dir, "deu")
    cands = task.candidates(xtreme_dir, "deu")
    assert len(queries) == len(cands) == 1000
    assert isinstance(queries[5], RetrievalExample)
    assert queries[5].gold_ids == (cands[5].candidate_id,) == ("tatoeba-000005",)
    assert cands[0].text == "Mary said she didn't know where Tom was."


def test_xcopa_real(xtreme_dir: Path) -> None:
    task = get_task("xcopa")
    val = task.load(xtreme_dir, "et", "val")
    assert len(val) == 100 and isinstance(val[0], ChoiceExample)
    assert val[0].example_id == "xcopa-val-000000" and val[0].choices[1] == "Tilast voolas vett."
    en = task.load(xtreme_dir, "en", "val")
    assert [e.example_id for e in en] == [e.example_id for e in val]
    # The test files here carry placeholder labels (all 0); the reader says so.
    with pytest.warns(UserWarning, match="placeholders"):
        task.load(xtreme_dir, "et", "test")


def test_missing_language_lists_available(xtreme_dir: Path) -> None:
    with pytest.raises(
        MissingDataError, match=r"no data for language\(s\) xx .*available.*: ar, bg"
    ):
        get_task("xnli").load(xtreme_dir, "xx")
    with pytest.raises(
        MissingDataError, match=r"no data for language\(s\) german .*Did you mean de\?"
    ):
        get_task("xquad").load(xtreme_dir, "german")


@pytest.mark.parametrize(
    ("task", "requested", "stored"),
    [
        ("xnli", "zho", "zh"),
        ("xnli", "deu", "de"),
        ("xquad", "deu", "de"),
        ("xnli", "zh-CN", "zh"),
        ("tatoeba", "de", "deu"),
        ("tatoeba", "zh", "cmn"),
    ],
)
def test_iso_639_3_and_1_codes_are_accepted_and_normalised(xtreme_dir, task, requested, stored):
    t = get_task(task)
    assert t.resolve_languages(xtreme_dir, [requested]) == [stored]
    split = t.default_split
    loaded = t.load(xtreme_dir, requested)
    assert [e.example_id for e in loaded] == [
        e.example_id for e in t.load(xtreme_dir, stored, split)
    ]
    assert {e.language for e in loaded} == {stored}


def test_missing_task_folder_explains_layout(tmp_path: Path) -> None:
    with pytest.raises(MissingDataError, match=r"\(none\)\nExpected the XTREME download layout"):
        get_task("pawsx").load(tmp_path, "de")


def test_unknown_split(xtreme_dir: Path) -> None:
    with pytest.raises(TaskDataError, match="has no split 'train'; known: dev, test"):
        get_task("xnli").load(xtreme_dir, "de", "train")


# --------------------------------------------------------------------------- broken files


def _write(root: Path, rel: str, content: str | bytes) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def test_tsv_wrong_field_count_names_file_and_line(tmp_path: Path) -> None:
    _write(tmp_path, "xnli/dev-de.tsv", "a\tb\tneutral\nonly\ttwo\n")
    with pytest.raises(TaskDataError, match=r"xnli/dev-de.tsv line 2: expected 3 tab-separated"):
        get_task("xnli").load(tmp_path, "de")


def test_tsv_unknown_label(tmp_path: Path) -> None:
    _write(tmp_path, "pawsx/dev-fr.tsv", "a\tb\t1\nc\td\t2\n")
    with pytest.raises(TaskDataError, match=r"dev-fr.tsv line 2: unknown label '2'"):
        get_task("pawsx").load(tmp_path, "fr")


def test_tsv_header_skipped_and_quotes_kept(tmp_path: Path) -> None:
    _write(tmp_path, "pawsx/dev-fr.tsv", 'sentence1\tsentence2\tlabel\n"a\tb"\t0\n')
    (ex,) = get_task("pawsx").load(tmp_path, "fr")
    # No quoting in XTREME TSVs: a quote is a character like any other.
    assert ex.premise == '"a' and ex.hypothesis == 'b"' and ex.example_id == "pawsx-dev-000000"


def test_bad_encoding_names_line(tmp_path: Path) -> None:
    _write(tmp_path, "xnli/dev-de.tsv", b"a\tb\tneutral\n\xff\xfe\tb\tneutral\n")
    with pytest.raises(TaskDataError, match=r"dev-de.tsv line 2: not valid UTF-8"):
        get_task("xnli").load(tmp_path, "de")


def test_empty_file(tmp_path: Path) -> None:
    _write(tmp_path, "xnli/dev-de.tsv", "")
    with pytest.raises(TaskDataError, match="no examples"):
        get_task("xnli").load(tmp_path, "de")


def _squad(qas: list[dict], context: str = "Paris is in France.") -> str:
    return json.dumps({"data": [{"title": "t", "paragraphs": [{"context": context, "qas": qas}]}]})


@pytest.mark.parametrize(
    ("qas", "message"),
    [
        (
            [{"id": "q", "question": "Where?", "answers": [{"text": "France"}]}],
            "no integer 'answer_start'",
        ),
        (
            [{"id": "q", "question": "Where?", "answers": [{"text": "France", "answer_start": 3}]}],
            "does not match the context at answer_start 3",
        ),
        (
            [
                {
                    "id": "q",
                    "question": "Where?",
                    "answers": [{"text": "France", "answer_start": 99}],
                }
            ],
            "outside the context",
        ),
        ([{"id": "q", "answers": []}], "missing or empty 'question'"),
        ([{"question": "Where?", "answers": []}], "missing question 'id'"),
        (
            [
                {"id": "q", "question": "A?", "answers": [{"text": "Paris", "answer_start": 0}]},
                {"id": "q", "question": "B?", "answers": [{"text": "Paris", "answer_start": 0}]},
            ],
            None,
        ),
    ],
)
def test_squad_errors_name_file_and_question(
    tmp_path: Path, qas: list[dict], message: str | None
) -> None:
    _write(tmp_path, "xquad/xquad.de.json", _squad(qas))
    if message is None:  # repeated ids are made unique, with a warning
        with pytest.warns(UserWarning, match="made unique"):
            got = get_task("xquad").load(tmp_path, "de")
        assert [e.example_id for e in got] == ["q", "q#1"]
        return
    with pytest.raises(TaskDataError, match=message) as info:
        get_task("xquad").load(tmp_path, "de")
    assert "xquad.de.json" in str(info.value)


def test_squad_broken_json_names_line(tmp_path: Path) -> None:
    _write(tmp_path, "xquad/xquad.de.json", '{"data": [\n  {"paragraphs": [}\n')
    with pytest.raises(TaskDataError, match=r"xquad.de.json line 2 column \d+: invalid JSON"):
        get_task("xquad").load(tmp_path, "de")


def test_tatoeba_line_mismatch(tmp_path: Path) -> None:
    _write(tmp_path, "tatoeba/v1/tatoeba.deu-eng.deu", "a\nb\n")
    _write(tmp_path, "tatoeba/v1/tatoeba.deu-eng.eng", "a\n")
    with pytest.raises(TaskDataError, match=r"has 2 lines but .* has 1"):
        get_task("tatoeba").load(tmp_path, "deu")


def test_bucc_reader(tmp_path: Path) -> None:
    _write(tmp_path, "bucc2018/de-en.dev.de", "de-1\tHallo Welt\nde-2\tGuten Tag\n")
    _write(tmp_path, "bucc2018/de-en.dev.en", "en-7\tGood day\nen-8\tHello world\nen-9\tNoise\n")
    _write(tmp_path, "bucc2018/de-en.dev.gold", "de-1\ten-8\n")
    task = get_task("bucc2018")
    assert task.languages(tmp_path) == ["de"]
    q = task.load(tmp_path, "de")
    assert [(e.example_id, e.gold_ids) for e in q] == [("de-1", ("en-8",)), ("de-2", ())]
    assert [c.candidate_id for c in task.candidates(tmp_path, "de")] == ["en-7", "en-8", "en-9"]
    _write(tmp_path, "bucc2018/de-en.dev.gold", "de-1\ten-5\n")
    with pytest.raises(TaskDataError, match=r"de-en.dev.gold line 1: unknown English id 'en-5'"):
        task.load(tmp_path, "de")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "line 1: invalid JSON"),
        (
            '{"premise": "p", "choice1": "a", "choice2": "b", "question": "why", "label": 0}',
            "'question' must be",
        ),
        (
            '{"premise": "p", "choice1": "a", "choice2": "b", "question": "cause", "label": 2}',
            "'label' must be 0 or 1",
        ),
        (
            '{"premise": "p", "choice1": "", "choice2": "b", "question": "cause", "label": 0}',
            "empty 'choice1'",
        ),
    ],
)
def test_xcopa_errors(tmp_path: Path, line: str, message: str) -> None:
    _write(tmp_path, "xcopa/val-et.jsonl", line + "\n")
    with pytest.raises(TaskDataError, match=message):
        get_task("xcopa").load(tmp_path, "et", "val")


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.binary(max_size=300))
def test_fuzzed_files_give_documented_errors(tmp_path: Path, content: bytes) -> None:
    """Arbitrary bytes in any reader: examples or a TaskDataError, never anything else."""
    cases = [
        ("xnli", "xnli/dev-de.tsv", "de", None),
        ("xquad", "xquad/xquad.de.json", "de", None),
        ("xcopa", "xcopa/val-de.jsonl", "de", "val"),
    ]
    for name, rel, lang, split in cases:
        _write(tmp_path, rel, content)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                got = get_task(name).load(tmp_path, lang, split)
            except TaskDataError:
                continue
        assert got and all(e.language == lang for e in got)


def test_prompt_formats() -> None:
    ex = PairExample("x", "de", "Es regnet.", "Die Straße ist nass.", 1)
    opts = get_task("xnli").lm_options(ex)
    # Label order of the task: contradiction, entailment, neutral.
    assert [c for _, c in opts] == [
        "Es regnet., richtig? Nein, Die Straße ist nass.",
        "Es regnet., richtig? Ja, Die Straße ist nass.",
        "Es regnet., richtig? Auch, Die Straße ist nass.",
    ]
    th = ChoiceExample("x", "th", "ฝนตก", "ถนนเปียก", "แดดออก", "effect", 0)
    # No final punctuation in Thai: nothing is cut from the premise.
    assert get_task("xcopa").lm_options(th)[0] == ("ฝนตก ดังนั้น", " ถนนเปียก")


@pytest.mark.parametrize("task", ["xnli", "pawsx"])
def test_unlabelled_xtreme_test_files_say_the_labels_are_withheld(
    tmp_path: Path, task: str
) -> None:
    # The XTREME download's test files: sentence 1 and sentence 2, no label.
    folder = tmp_path / task
    folder.mkdir()
    (folder / "test-de.tsv").write_text(
        "Ein Satz.\tNoch ein Satz.\nZwei.\tDrei.\n", encoding="utf-8"
    )
    with pytest.raises(
        TaskDataError,
        match=r"test-de.tsv: no gold labels \(line 1 has 2 fields\): the XTREME download "
        r"withholds test labels for XNLI and PAWS-X; use dev",
    ):
        get_task(task).load(tmp_path, "de", "test")


def test_pawsx_original_release_with_id_column_and_header(tmp_path: Path) -> None:
    folder = tmp_path / "pawsx"
    folder.mkdir()
    (folder / "dev-de.tsv").write_text(
        "id\tsentence1\tsentence2\tlabel\n"
        "1\tDer Hund bellt.\tEs bellt der Hund.\t1\n"
        "7\tEr kam spät.\tSie kam früh.\t0\n",
        encoding="utf-8",
    )
    examples = get_task("pawsx").load(tmp_path, "de", "dev")
    assert [(e.example_id, e.premise, e.hypothesis, e.label) for e in examples] == [
        ("pawsx-dev-id1", "Der Hund bellt.", "Es bellt der Hund.", 1),
        ("pawsx-dev-id7", "Er kam spät.", "Sie kam früh.", 0),
    ]
    # a short row is named by its line
    (folder / "dev-fr.tsv").write_text(
        "id\tsentence1\tsentence2\tlabel\n2\tUne phrase.\t1\n", encoding="utf-8"
    )
    with pytest.raises(TaskDataError, match=r"dev-fr.tsv line 2: expected 4 tab-separated fields"):
        get_task("pawsx").load(tmp_path, "fr", "dev")
    # the original test files without labels
    (folder / "test-de.tsv").write_text("id\tsentence1\tsentence2\n1\ta\tb\n", encoding="utf-8")
    with pytest.raises(TaskDataError, match="withholds test labels"):
        get_task("pawsx").load(tmp_path, "de", "test")


# --------------------------------------------------------------------------- PAN-X


def test_panx_reader_names_the_line_of_a_bad_row(tmp_path: Path) -> None:
    from xcal.tasks import TaskDataError
    from xcal.tasks.tagging import read_tagged

    path = tmp_path / "train-en.tsv"
    path.write_text("Paris\tB-LOC\n\nBob\tB-PER\nsays hi\n")
    with pytest.raises(TaskDataError, match=r"train-en.tsv line 4: expected 'token<TAB>tag'"):
        read_tagged(path)
    path.write_text("Paris\tB-LOC\nis\tB-CITY\n")
    with pytest.raises(TaskDataError, match=r"line 2: unknown tag 'B-CITY'"):
        read_tagged(path)
    path.write_text("\n\n")
    with pytest.raises(TaskDataError, match="no tagged sentences"):
        read_tagged(path)


def test_panx_reader_stops_at_the_limit_and_reads_the_real_file(xtreme_dir: Path) -> None:
    from xcal.tasks.tagging import read_tagged

    path = xtreme_dir / "panx" / "train-en.tsv"
    head = read_tagged(path, limit=3)
    assert len(head) == 3 and head[0].words[:2] == ("R.H.", "Saunders")
    assert len(read_tagged(path)) == 20_000  # the data README's count
