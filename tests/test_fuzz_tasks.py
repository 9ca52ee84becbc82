"""Hostile and broken data files, fuzzed with hypothesis, against the XTREME task readers.

The contract (xcal.tasks): reading a language either returns exactly the
examples the file holds, or raises :class:`xcal.tasks.TaskDataError` (a
:class:`~xcal.tasks.MissingDataError` for an absent language) whose message
names the file and, for line-based formats, the line at fault. Never another
exception, never a wrong label, text or id.

Each test writes generated files into a fresh directory laid out like the
XTREME download: valid files must round-trip exactly; files with one planted
fault (wrong field count, CSV-style quoting, bad label, empty sentence,
Latin-1 bytes, NUL bytes, truncation, broken JSON lines, missing keys, answer
offsets that do not match the context, line counts that differ) must raise
the documented error at the planted line.
"""

from __future__ import annotations

import json
import re
import tempfile
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from xcal.languages import language_key
from xcal.tasks import MissingDataError, TaskDataError, get_task

FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

# Text as real files hold it: any Unicode scalar value (no surrogates), including
# the separators that are not line ends for these readers (U+2028, NEL, VT, FF).
CHARS = st.characters(exclude_categories=["Cs"], exclude_characters="\x00")
SENTENCE = st.text(CHARS.filter(lambda c: c not in "\t\n"), min_size=1, max_size=25).filter(
    # A leading U+FEFF would be a byte-order mark at the start of a file (dropped).
    lambda s: bool(s.strip()) and not s.endswith("\r") and not s.startswith("\ufeff")
)


@contextmanager
def data_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as tmp:
        yield Path(tmp)


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def load(task: str, root: Path, language: str, split: str | None = None) -> list[Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # placeholder-label and no-answer notices
        return get_task(task).load(root, language, split)


def expect_error(
    fn: Callable[[], Any], path: Path, line: int | None = None, *, match: str | None = None
) -> TaskDataError:
    """``fn()`` raises TaskDataError naming ``path`` (and ``line N`` when given)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(TaskDataError) as info:
            fn()
    message = str(info.value)
    assert str(path) in message, message
    if line is not None:
        assert re.search(rf"\bline {line}\b", message), message
    if match is not None:
        assert re.search(match, message), message
    return info.value


def line_ending() -> st.SearchStrategy[str]:
    return st.sampled_from(["\n", "\r\n"])


# --------------------------------------------------------------------------- XNLI / PAWS-X TSV

PAIR_TASKS = {"xnli": ("contradiction", "entailment", "neutral"), "pawsx": ("0", "1")}


@st.composite
def pair_files(draw: st.DrawFn) -> dict[str, Any]:
    task = draw(st.sampled_from(sorted(PAIR_TASKS)))
    spellings = PAIR_TASKS[task]
    rows = draw(
        st.lists(
            st.tuples(SENTENCE, SENTENCE, st.integers(0, len(spellings) - 1)),
            min_size=1,
            max_size=12,
        )
    )
    pad = draw(st.sampled_from(["", " ", "  "]))  # labels are read stripped
    lines = [f"{p}\t{h}\t{pad}{spellings[y]}" for p, h, y in rows]
    header = draw(st.booleans())
    if header:
        lines.insert(0, "sentence1\tsentence2\tlabel")
    return {
        "task": task,
        "rows": rows,
        "lines": lines,
        "header": header,
        "eol": draw(line_ending()),
        "final_eol": draw(st.booleans()),
    }


def pair_bytes(f: dict[str, Any], lines: list[str] | None = None) -> bytes:
    lines = f["lines"] if lines is None else lines
    text = f["eol"].join(lines) + (f["eol"] if f["final_eol"] else "")
    return text.encode("utf-8")


def pair_path(root: Path, task: str) -> Path:
    return root / task / "dev-de.tsv"


@FUZZ
@given(pair_files())
def test_valid_pair_files_round_trip_exactly(f: dict[str, Any]) -> None:
    with data_dir() as root:
        write(pair_path(root, f["task"]), pair_bytes(f))
        examples = load(f["task"], root, "de")
    assert [(e.premise, e.hypothesis, e.label) for e in examples] == f["rows"]
    assert [e.example_id for e in examples] == [
        f"{f['task']}-dev-{i:06d}" for i in range(len(f["rows"]))
    ]
    assert {e.language for e in examples} == {"de"}


PAIR_FAULTS = (
    "missing_field",
    "extra_field",
    "csv_quoting",
    "bad_label",
    "empty_sentence",
    "latin1",
    "nul",
)


@FUZZ
@given(pair_files(), st.sampled_from(PAIR_FAULTS), st.data())
def test_broken_pair_files_name_file_and_line(
    f: dict[str, Any], fault: str, data: st.DataObject
) -> None:
    lines = list(f["lines"])
    first = 1 if f["header"] else 0
    i = data.draw(st.integers(first, len(lines) - 1), label="line index")
    premise, hypothesis, label = lines[i].split("\t")
    spellings = PAIR_TASKS[f["task"]]
    raw: bytes | None = None
    expected_line = i + 1
    if fault == "missing_field":
        lines[i] = data.draw(st.sampled_from([f"{premise}\t{label}", f"{premise} {hypothesis}"]))
    elif fault == "extra_field":
        lines[i] = f"{premise}\t{hypothesis}\t{label}\t{data.draw(SENTENCE)}"
    elif fault == "csv_quoting":
        # A CSV writer quoting a field with a line break in it: the TSV has no
        # quoting, so the record spans two lines and the first is short.
        lines[i] = f'"{premise}{f["eol"]}{hypothesis}"\t{label}'
    elif fault == "bad_label":
        bad = data.draw(
            st.text(CHARS.filter(lambda c: c not in "\t\n\r"), max_size=12).filter(
                lambda s: s.strip() not in spellings
            )
        )
        lines[i] = f"{premise}\t{hypothesis}\t{bad}"
    elif fault == "empty_sentence":
        blank = data.draw(st.sampled_from(["", " ", "\u3000"]))
        lines[i] = data.draw(
            st.sampled_from([f"{blank}\t{hypothesis}\t{label}", f"{premise}\t{blank}\t{label}"])
        )
    if fault in ("latin1", "nul"):
        # One byte that is not UTF-8 text ("é" in Latin-1, or NUL) inside the premise.
        j = data.draw(st.integers(0, len(premise)))
        byte = b"\xe9" if fault == "latin1" else b"\x00"
        encoded = [line.encode() for line in lines]
        encoded[i] = premise[:j].encode() + byte + f"{premise[j:]}\t{hypothesis}\t{label}".encode()
        eol = f["eol"].encode()
        raw = eol.join(encoded) + (eol if f["final_eol"] else b"")
    with data_dir() as root:
        path = write(pair_path(root, f["task"]), raw if raw is not None else pair_bytes(f, lines))
        expect_error(lambda: load(f["task"], root, "de"), path, expected_line)


@FUZZ
@given(pair_files(), st.data())
def test_truncated_pair_file_is_a_prefix_or_an_error(
    f: dict[str, Any], data: st.DataObject
) -> None:
    full = pair_bytes(f)
    cut = data.draw(st.integers(0, len(full) - 1), label="cut")
    with data_dir() as root:
        path = write(pair_path(root, f["task"]), full[:cut])
        try:
            examples = load(f["task"], root, "de")
        except TaskDataError as exc:
            assert str(path) in str(exc)
            return
    # Cut at a line end: the complete lines before it, nothing invented.
    assert [(e.premise, e.hypothesis, e.label) for e in examples] == f["rows"][: len(examples)]
    assert len(examples) >= 1


# --------------------------------------------------------------------------- XCOPA JSONL

JSON_TEXT = st.text(CHARS, min_size=1, max_size=20).filter(lambda s: bool(s.strip()))


@st.composite
def xcopa_files(draw: st.DrawFn) -> dict[str, Any]:
    n = draw(st.integers(1, 10))
    with_idx = draw(st.booleans())
    idxs = draw(st.lists(st.integers(0, 10**6), min_size=n, max_size=n, unique=True))
    rows = []
    for k in range(n):
        row: dict[str, Any] = {
            "premise": draw(JSON_TEXT),
            "choice1": draw(JSON_TEXT),
            "choice2": draw(JSON_TEXT),
            "question": draw(st.sampled_from(["cause", "effect"])),
            "label": draw(st.integers(0, 1)),
        }
        if with_idx:
            row["idx"] = idxs[k]
        rows.append(row)
    ensure_ascii = draw(st.booleans())
    lines = [json.dumps(r, ensure_ascii=ensure_ascii) for r in rows]
    # Blank lines between records are allowed.
    blanks = draw(st.lists(st.integers(0, len(lines)), max_size=3))
    for b in sorted(blanks, reverse=True):
        lines.insert(b, "")
    return {"rows": rows, "lines": lines, "eol": draw(line_ending()), "with_idx": with_idx}


def xcopa_path(root: Path) -> Path:
    return root / "xcopa" / "test-et.jsonl"


@FUZZ
@given(xcopa_files())
def test_valid_xcopa_files_round_trip_exactly(f: dict[str, Any]) -> None:
    with data_dir() as root:
        write(xcopa_path(root), f["eol"].join(f["lines"]).encode())
        examples = load("xcopa", root, "et")
    got = [(e.premise, e.choice1, e.choice2, e.question, e.label) for e in examples]
    want = [
        (r["premise"], r["choice1"], r["choice2"], r["question"], r["label"]) for r in f["rows"]
    ]
    assert got == want
    assert all(type(e.label) is int for e in examples)
    ids = [r["idx"] if f["with_idx"] else k for k, r in enumerate(f["rows"])]
    assert [e.example_id for e in examples] == [f"xcopa-test-{i:06d}" for i in ids]


BAD_FIELD_VALUES: dict[str, list[Any]] = {
    "premise": [None, "", "  ", 3, ["a"]],
    "choice1": [None, "", 0.5, {"x": 1}],
    "choice2": [None, "\t", True],
    "question": [None, "Cause", "why", 1],
    "label": [None, 2, -1, "1", True, False, 1.5, 0.0, 1.0, [1]],
    "idx": [-1, "3", 2.0, True, None],
}


@FUZZ
@given(xcopa_files(), st.data())
def test_broken_xcopa_lines_name_file_and_line(f: dict[str, Any], data: st.DataObject) -> None:
    lines = list(f["lines"])
    record_lines = [k for k, line in enumerate(lines) if line]
    k = data.draw(st.sampled_from(record_lines), label="line index")
    row = json.loads(lines[k])
    fault = data.draw(
        st.sampled_from(["truncated", "not_object", "missing_key", "bad_value", "deep"])
    )
    if fault == "truncated":
        cut = data.draw(st.integers(1, len(lines[k]) - 1))
        lines[k] = lines[k][:cut]
    elif fault == "not_object":
        lines[k] = json.dumps(data.draw(st.sampled_from([[row], 1, "text", None, True])))
    elif fault == "missing_key":
        key = data.draw(st.sampled_from(["premise", "choice1", "choice2", "question", "label"]))
        del row[key]
        lines[k] = json.dumps(row)
    elif fault == "bad_value":
        key = data.draw(st.sampled_from(sorted(BAD_FIELD_VALUES)))
        row[key] = data.draw(st.sampled_from(BAD_FIELD_VALUES[key]))
        lines[k] = json.dumps(row)
    else:  # nesting deep enough to exhaust a recursive parser
        lines[k] = "[" * 100_000 + "]" * 100_000
    with data_dir() as root:
        path = write(xcopa_path(root), f["eol"].join(lines).encode())
        expect_error(lambda: load("xcopa", root, "et"), path, k + 1)


@FUZZ
@given(xcopa_files())
def test_duplicate_xcopa_idx_is_an_error(f: dict[str, Any]) -> None:
    rows = f["rows"] + [dict(f["rows"][0], idx=f["rows"][0].get("idx", 0))]
    if not f["with_idx"]:
        for k, r in enumerate(rows[:-1]):
            r["idx"] = k
    with data_dir() as root:
        path = write(xcopa_path(root), "\n".join(json.dumps(r) for r in rows).encode())
        expect_error(lambda: load("xcopa", root, "et"), path, match="duplicate example id")


# --------------------------------------------------------------------------- SQuAD JSON


@st.composite
def squad_files(draw: st.DrawFn) -> dict[str, Any]:
    articles = []
    expected = []
    qid = 0
    for _ in range(draw(st.integers(1, 3))):
        paragraphs = []
        for _ in range(draw(st.integers(1, 3))):
            context = draw(st.text(CHARS, min_size=1, max_size=60).filter(lambda s: s.strip()))
            qas = []
            for _ in range(draw(st.integers(1, 3))):
                answers = []
                for _ in range(draw(st.integers(1, 3))):
                    start = draw(st.integers(0, len(context) - 1))
                    end = draw(st.integers(start + 1, len(context)))
                    answers.append({"text": context[start:end], "answer_start": start})
                question = draw(JSON_TEXT)
                qas.append({"id": f"q{qid:04d}", "question": question, "answers": answers})
                expected.append(
                    (
                        f"q{qid:04d}",
                        context,
                        question,
                        [(a["text"], a["answer_start"]) for a in answers],
                    )
                )
                qid += 1
            paragraphs.append({"context": context, "qas": qas})
        articles.append({"title": "t", "paragraphs": paragraphs})
    return {
        "doc": {"version": "1.1", "data": articles},
        "expected": expected,
        "indent": draw(st.sampled_from([None, 1])),
        "ensure_ascii": draw(st.booleans()),
    }


def squad_bytes(f: dict[str, Any], doc: Any) -> bytes:
    return json.dumps(doc, indent=f["indent"], ensure_ascii=f["ensure_ascii"]).encode()


SQUAD_TASKS = {
    "xquad": lambda root: root / "xquad" / "xquad.de.json",
    "mlqa": lambda root: root / "mlqa" / "MLQA_V1" / "dev" / "dev-context-de-question-de.json",
    "tydiqa": lambda root: root / "tydiqa" / "tydiqa-goldp-v1.1-dev" / "tydiqa.goldp.de.dev.json",
}


@FUZZ
@given(squad_files(), st.sampled_from(sorted(SQUAD_TASKS)))
def test_valid_squad_files_round_trip_exactly(f: dict[str, Any], task: str) -> None:
    with data_dir() as root:
        write(SQUAD_TASKS[task](root), squad_bytes(f, f["doc"]))
        examples = load(task, root, "de")
    got = [
        (e.example_id, e.context, e.question, [(a.text, a.answer_start) for a in e.answers])
        for e in examples
    ]
    assert got == f["expected"]
    for e in examples:
        for a in e.answers:
            assert e.context[a.answer_start : a.answer_start + len(a.text)] == a.text


def _questions(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [qa for art in doc["data"] for par in art["paragraphs"] for qa in par["qas"]]


@FUZZ
@given(squad_files(), st.data())
def test_broken_squad_files_give_the_documented_error(
    f: dict[str, Any], data: st.DataObject
) -> None:
    doc = json.loads(json.dumps(f["doc"]))
    fault = data.draw(
        st.sampled_from(
            [
                "truncated",
                "no_data",
                "missing_key",
                "wrong_type",
                "offset_missing",
                "offset_type",
                "offset_outside",
                "offset_mismatch",
                "deep",
            ]
        )
    )
    raw: bytes | None = None
    line: int | None = None
    qa = data.draw(st.sampled_from(_questions(doc)))
    answer = data.draw(st.sampled_from(qa["answers"]))
    paragraph = next(p for a in doc["data"] for p in a["paragraphs"] if qa in p["qas"])
    context = paragraph["context"]
    if fault == "truncated":
        full = squad_bytes(f, f["doc"])
        cut = data.draw(st.integers(0, len(full) - 1))
        raw = full[:cut]
        try:  # a cut into trailing whitespace would leave the same document
            assume(json.loads(raw) != f["doc"])
        except ValueError:
            pass
    elif fault == "no_data":
        doc = data.draw(st.sampled_from([{"version": "1.1"}, [doc], {"data": {}}, None]))
    elif fault == "missing_key":
        target, key = data.draw(
            st.sampled_from(
                [
                    (doc["data"][0], "paragraphs"),
                    (paragraph, "context"),
                    (paragraph, "qas"),
                    (qa, "id"),
                    (qa, "question"),
                    (qa, "answers"),
                    (answer, "text"),
                ]
            )
        )
        del target[key]
    elif fault == "wrong_type":
        target, key, value = data.draw(
            st.sampled_from(
                [
                    (doc["data"][0], "paragraphs", {"context": "x"}),
                    (paragraph, "context", 5),
                    (paragraph, "context", "   "),
                    (paragraph, "qas", "q"),
                    (qa, "id", None),
                    (qa, "question", ["?"]),
                    (qa, "answers", {"text": "a"}),
                    (answer, "text", 7),
                ]
            )
        )
        target[key] = value
    elif fault == "offset_missing":
        del answer["answer_start"]
    elif fault == "offset_type":
        answer["answer_start"] = data.draw(
            st.sampled_from(
                [str(answer["answer_start"]), float(answer["answer_start"]), None, True]
            )
        )
    elif fault == "offset_outside":
        answer["answer_start"] = data.draw(
            st.one_of(
                st.integers(max_value=-1),
                st.integers(min_value=len(context) - len(answer["text"]) + 1),
            )
        )
    elif fault == "offset_mismatch":
        shifted = data.draw(st.integers(0, len(context) - len(answer["text"])))
        # The documented error is for text not found at its offset; a shift
        # onto another copy of the same text is still a correct answer.
        assume(context[shifted : shifted + len(answer["text"])] != answer["text"])
        answer["answer_start"] = shifted
    else:  # nesting deep enough to exhaust a recursive parser
        raw = b'{"data": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    task = data.draw(st.sampled_from(sorted(SQUAD_TASKS)))
    with data_dir() as root:
        path = write(SQUAD_TASKS[task](root), raw if raw is not None else squad_bytes(f, doc))
        error = expect_error(lambda: load(task, root, "de"), path, line)
    if fault.startswith("offset_"):
        # Answer problems name the question they belong to.
        assert repr(qa["id"]) in str(error)


# --------------------------------------------------------------------------- Tatoeba


@st.composite
def tatoeba_files(draw: st.DrawFn) -> dict[str, Any]:
    n = draw(st.integers(1, 10))
    src = draw(st.lists(SENTENCE, min_size=n, max_size=n))
    eng = draw(st.lists(SENTENCE, min_size=n, max_size=n))
    return {
        "src": src,
        "eng": eng,
        "eol_src": draw(line_ending()),
        "eol_eng": draw(line_ending()),
        "final_src": draw(st.booleans()),
        "final_eng": draw(st.booleans()),
    }


def tatoeba_paths(root: Path) -> tuple[Path, Path]:
    base = root / "tatoeba" / "v1"
    return base / "tatoeba.deu-eng.deu", base / "tatoeba.deu-eng.eng"


def joined(lines: list[str], eol: str, final: bool) -> bytes:
    return (eol.join(lines) + (eol if final and lines else "")).encode()


def load_tatoeba(root: Path) -> tuple[list[Any], list[Any]]:
    task = get_task("tatoeba")
    return task.load(root, "deu"), task.candidates(root, "deu")  # type: ignore[attr-defined]


@FUZZ
@given(tatoeba_files())
def test_valid_tatoeba_pairs_round_trip_exactly(f: dict[str, Any]) -> None:
    with data_dir() as root:
        src_path, eng_path = tatoeba_paths(root)
        write(src_path, joined(f["src"], f["eol_src"], f["final_src"]))
        write(eng_path, joined(f["eng"], f["eol_eng"], f["final_eng"]))
        queries, candidates = load_tatoeba(root)
    assert [q.query for q in queries] == f["src"]
    assert [c.text for c in candidates] == f["eng"]
    # Query i's gold candidate is English line i.
    assert [q.gold_ids for q in queries] == [(c.candidate_id,) for c in candidates]


@FUZZ
@given(tatoeba_files(), st.data())
def test_broken_tatoeba_pairs_name_the_files(f: dict[str, Any], data: st.DataObject) -> None:
    fault = data.draw(
        st.sampled_from(["extra_line", "missing_line", "empty_line", "latin1", "nul"])
    )
    side = data.draw(st.sampled_from(["src", "eng"]))
    lines = {"src": list(f["src"]), "eng": list(f["eng"])}
    raw: dict[str, bytes] = {}
    line: int | None = None
    k = data.draw(st.integers(0, len(lines[side]) - 1))
    if fault == "extra_line":
        lines[side].insert(k, data.draw(SENTENCE))
    elif fault == "missing_line":
        del lines[side][k]
    elif fault == "empty_line":
        lines[side][k] = data.draw(st.sampled_from(["", " ", "\t"]))
        line = k + 1
        if lines[side][k] == "" and k == len(lines[side]) - 1 and not f["final_" + side]:
            # An empty last line with no line end is no line at all: the file
            # is one line short, which is the other documented error.
            fault, line = "missing_line", None
            del lines[side][k]
    else:
        bad = b"\xe9" if fault == "latin1" else b"\x00"
        encoded = [s.encode() for s in lines[side]]
        encoded[k] = bad + encoded[k]
        eol = f["eol_" + side].encode()
        raw[side] = eol.join(encoded) + (eol if f["final_" + side] else b"")
        line = k + 1
    with data_dir() as root:
        src_path, eng_path = tatoeba_paths(root)
        paths = {"src": src_path, "eng": eng_path}
        for name, path in paths.items():
            eol, final = f["eol_" + name], f["final_" + name]
            write(path, raw.get(name, joined(lines[name], eol, final)))
        # Mismatched counts name both files; a bad line names its own file.
        error = expect_error(lambda: load_tatoeba(root), paths[side], line)
        if fault in ("extra_line", "missing_line"):
            assert str(paths["src"]) in str(error) and str(paths["eng"]) in str(error)
            assert f"has {len(lines['src'])} lines" in str(error)
        # The candidate pool is read from the same files and fails the same way.
        expect_error(
            lambda: get_task("tatoeba").candidates(root, "deu"),  # type: ignore[attr-defined]
            paths[side],
            line,
        )


# --------------------------------------------------------------------------- every format


FILES: dict[str, tuple[Callable[[Path], Path], str]] = {
    "xnli": (lambda root: root / "xnli" / "dev-de.tsv", "de"),
    "pawsx": (lambda root: root / "pawsx" / "dev-de.tsv", "de"),
    "xcopa": (xcopa_path, "et"),
    "xquad": (SQUAD_TASKS["xquad"], "de"),
    "mlqa": (SQUAD_TASKS["mlqa"], "de"),
    "tydiqa": (SQUAD_TASKS["tydiqa"], "de"),
}

VALID_SAMPLE = {
    "xnli": "Er schläft.\tEr ist wach.\tcontradiction\n",
    "pawsx": "Satz eins.\tSatz zwei.\t1\n",
    "xcopa": json.dumps(
        {
            "premise": "P.",
            "choice1": "A.",
            "choice2": "B.",
            "question": "cause",
            "label": 1,
            "idx": 0,
        }
    )
    + "\n",
    "xquad": json.dumps(
        {
            "data": [
                {
                    "paragraphs": [
                        {
                            "context": "Berlin ist groß.",
                            "qas": [
                                {
                                    "id": "q1",
                                    "question": "Was?",
                                    "answers": [{"text": "Berlin", "answer_start": 0}],
                                }
                            ],
                        }
                    ]
                }
            ]
        }
    ),
}
VALID_SAMPLE["mlqa"] = VALID_SAMPLE["tydiqa"] = VALID_SAMPLE["xquad"]


@pytest.mark.parametrize("task", sorted(FILES))
@pytest.mark.parametrize("content", [b"", b"\n", b"\r\n\r\n", b"   \n"], ids=repr)
def test_empty_files_are_a_clear_error(task: str, content: bytes) -> None:
    with data_dir() as root:
        make_path, language = FILES[task]
        path = write(make_path(root), content)
        expect_error(lambda: load(task, root, language), path)


def test_empty_tatoeba_files_are_a_clear_error() -> None:
    with data_dir() as root:
        src_path, eng_path = tatoeba_paths(root)
        write(src_path, b"")
        write(eng_path, b"")
        expect_error(lambda: load_tatoeba(root), src_path, match="no examples")


@pytest.mark.parametrize("task", sorted(FILES))
def test_utf8_byte_order_mark_is_not_part_of_the_data(task: str) -> None:
    # Windows tools write a BOM; it must neither break parsing nor end up in a text.
    with data_dir() as root:
        make_path, language = FILES[task]
        write(make_path(root), VALID_SAMPLE[task].encode())
        plain = load(task, root, language)
        write(make_path(root), b"\xef\xbb\xbf" + VALID_SAMPLE[task].encode())
        assert load(task, root, language) == plain


def test_tatoeba_byte_order_mark_is_not_part_of_the_data() -> None:
    with data_dir() as root:
        src_path, eng_path = tatoeba_paths(root)
        write(src_path, "Hallo.\nTschüss.\n".encode())
        write(eng_path, b"\xef\xbb\xbfHello.\nBye.\n")
        queries, candidates = load_tatoeba(root)
    assert [c.text for c in candidates] == ["Hello.", "Bye."]
    assert [q.query for q in queries] == ["Hallo.", "Tschüss."]


@pytest.mark.parametrize("task", sorted(FILES))
@pytest.mark.parametrize(
    "encoding", ["latin-1", "utf-16", "utf-16-le", "utf-32", "cp1252"], ids=str
)
def test_files_in_other_encodings_are_a_clear_error(task: str, encoding: str) -> None:
    # Text with a non-ASCII letter in another encoding: UTF-16/32 without a BOM
    # would decode as UTF-8 full of NUL bytes, which is refused too.
    make_path, language = FILES[task]
    text = VALID_SAMPLE[task].replace("Er", "Ér").replace("Berlin", "Bérlin")
    text = text.replace("P.", "Pé.").replace("Satz", "Sätz")
    with data_dir() as root:
        path = write(make_path(root), text.encode(encoding))
        expect_error(lambda: load(task, root, language), path, match="UTF-8|NUL")


LANGUAGE_CODES = st.one_of(
    st.text(CHARS, min_size=0, max_size=12),
    st.sampled_from(
        [
            "",
            "DE",
            "de ",
            " de",
            "de\n",
            "../de",
            "de/../de",
            "../../etc/passwd",
            "..",
            ".",
            "*",
            "d?",
            "de-",
            "dev-de",
            "de.tsv",
        ]
    ),
)


@settings(max_examples=100, deadline=None)
@given(
    st.sampled_from(["xnli", "pawsx", "xquad", "mlqa", "tydiqa", "xcopa", "tatoeba"]),
    LANGUAGE_CODES,
)
def test_unknown_language_codes_list_what_exists(task: str, language: str) -> None:
    with data_dir() as root:
        for name, (make_path, _lang) in FILES.items():
            write(make_path(root), VALID_SAMPLE[name].encode())
        src_path, eng_path = tatoeba_paths(root)
        write(src_path, b"Hallo.\n")
        write(eng_path, b"Hello.\n")
        known = get_task(task).languages(root)
        # Another spelling of a language that exists (deu for de) is found, not missing.
        assume(
            not language.strip() or all(language_key(language) != language_key(k) for k in known)
        )
        with pytest.raises(MissingDataError) as info:
            get_task(task).load(root, language)
    message = str(info.value)
    assert f"task {task!r}" in message and language in message
    assert f"available in {root}: {', '.join(known)}" in message


def test_unknown_language_through_the_cli_fails_before_any_model(
    xtreme_dir: Path, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from xcal.cli import app

    args = [
        "infer",
        "--model",
        str(tmp_path / "no-model"),
        "--task",
        "xnli",
        "--languages",
        "de,xx,../de",
    ]
    args += ["--store", str(tmp_path / "store"), "--data-dir", str(xtreme_dir), "--quiet"]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "300"})
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert "no data for language(s) xx, ../de" in text and "available in" in text
    assert not (tmp_path / "store").exists()
