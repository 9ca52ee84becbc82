"""The Arrow schema of a run file, conversion of record columns, and their checks.

Every run file has the same Arrow schema (:data:`ARROW_SCHEMA`): the union of
the columns of all record kinds, with the columns a kind does not use left
null. One schema for the whole store is what lets pandas, pyarrow, DuckDB or
Spark read every file of the store as one table without xcal.

Logits are ``list<float32>`` rather than ``fixed_size_list<float32, C>``:
a fixed-size list would make runs with different numbers of classes
(XNLI's 3, PAWS-X's 2) incompatible Arrow types and a dataset reader would
refuse to read them together. The width is checked instead (every row of a run
has the same length, equal to the manifest's ``n_classes``) and loading turns
the flat values into an ``(n, C)`` array with one reshape.

The checks here are the single place that decides whether a run is valid;
they run on the columns before a write and again whenever a run is read.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from xcal.settings import check_int64
from xcal.store.errors import Problem
from xcal.store.manifest import ARCHITECTURES, RECORD_KINDS, SCHEMA_VERSION, RunManifest

NBEST_TYPE = pa.struct(
    [
        ("text", pa.string()),
        ("start_char", pa.int64()),
        ("end_char", pa.int64()),
        ("start_logit", pa.float64()),
        ("end_logit", pa.float64()),
        ("score", pa.float64()),
    ]
)
ANSWER_TYPE = pa.struct([("text", pa.string()), ("answer_start", pa.int64())])

ARROW_SCHEMA = pa.schema(
    [
        pa.field("example_id", pa.string(), nullable=False),
        pa.field("label", pa.int64()),
        pa.field("logits", pa.list_(pa.float32())),
        pa.field("scores", pa.list_(pa.float64())),
        pa.field("nbest", pa.list_(NBEST_TYPE)),
        pa.field("answers", pa.list_(ANSWER_TYPE)),
        pa.field("candidate_ids", pa.list_(pa.string())),
        pa.field("gold_ids", pa.list_(pa.string())),
        pa.field("query_knn_mean", pa.float64()),
        pa.field("candidate_knn_mean", pa.list_(pa.float64())),
        pa.field("unit", pa.string()),
    ]
)

KIND_COLUMNS: dict[str, tuple[str, ...]] = {
    "classification": ("example_id", "logits", "label"),
    "multiple_choice": ("example_id", "scores", "label"),
    "qa": ("example_id", "nbest", "answers"),
    "retrieval": ("example_id", "candidate_ids", "scores", "gold_ids"),
    # Bitext mining (BUCC): most queries have no partner, so gold_ids may be
    # empty; the k-NN means are the denominators of the margin score.
    "mining": (
        "example_id",
        "candidate_ids",
        "scores",
        "gold_ids",
        "query_knn_mean",
        "candidate_knn_mean",
    ),
}

# Columns a kind may have. ``unit`` names the natural cluster an example
# belongs to (an XQuAD question's paragraph), resampled as a whole by the
# analysis (xcal.analyze.clusters); files written before it existed lack it.
OPTIONAL_COLUMNS: dict[str, tuple[str, ...]] = {"qa": ("unit",)}


def kind_columns(kind: str) -> tuple[str, ...]:
    """Every column a run of ``kind`` may have: its required ones, then its optional ones."""
    return KIND_COLUMNS[kind] + OPTIONAL_COLUMNS.get(kind, ())


# Keys of the Parquet key-value metadata.
META_SCHEMA_VERSION = b"xcal.schema_version"
META_MANIFEST = b"xcal.manifest"
META_MANIFEST_SHA256 = b"xcal.manifest_sha256"

# ISO 639-1/-2/-3 code, optionally with a script or region subtag (zh-Hans, pt_BR).
_LANGUAGE_RE = re.compile(r"^[a-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})*$")

Columns = dict[str, pa.Array]


def _rows_text(rows: np.ndarray) -> str:
    return "" if len(rows) <= 1 else f" (and {len(rows) - 1} more row(s))"


# --------------------------------------------------------------------------- manifest


def check_manifest(m: RunManifest, where: str) -> list[Problem]:
    """Problems with the manifest's own fields (types, ranges, known names)."""
    out: list[Problem] = []

    def bad(field: str, message: str) -> None:
        out.append(Problem(where, message, field=field))

    if m.schema_version != SCHEMA_VERSION:
        bad(
            "schema_version",
            f"unknown schema version {m.schema_version!r} (this xcal reads {SCHEMA_VERSION})",
        )
    if m.record_kind not in RECORD_KINDS:
        bad("record_kind", f"expected one of {list(RECORD_KINDS)}, got {m.record_kind!r}")
    if m.architecture not in ARCHITECTURES:
        bad("architecture", f"expected one of {list(ARCHITECTURES)}, got {m.architecture!r}")
    for name in ("model", "task", "split", "language", "perturbation", "input_fingerprint"):
        value = getattr(m, name)
        if not isinstance(value, str) or not value:
            bad(name, f"expected a non-empty string, got {value!r}")
        elif "\x00" in value:
            bad(name, "contains a NUL character")
        elif not _is_utf8(value):
            bad(name, f"not valid Unicode (a lone surrogate?): {value!r}")
    if isinstance(m.language, str) and m.language and not _LANGUAGE_RE.match(m.language):
        bad(
            "language",
            f"expected an ISO 639 code such as 'de' or 'deu' (optionally with a subtag, "
            f"'zh-Hans'), got {m.language!r}",
        )
    for name in ("xcal_version", "created_at", "model_revision", "device", "dtype"):
        value = getattr(m, name)
        if value is not None and not isinstance(value, str):
            bad(name, f"expected a string, got {value!r}")
        elif isinstance(value, str) and not _is_utf8(value):
            bad(name, f"not valid Unicode (a lone surrogate?): {value!r}")
    for name, low in (("n_examples", 1), ("n_truncated", 0), ("perturbation_seed", None)):
        value = getattr(m, name)
        if not _is_int(value):
            bad(name, f"expected an integer, got {value!r}")
        elif not check_int64(value):
            bad(name, f"expected an integer that fits in 64 bits, got {value!r}")
        elif name == "n_examples" and value == 0:
            bad(name, "empty run: n_examples is 0 (a run needs at least one example)")
        elif low is not None and value < low:
            bad(name, f"expected an integer >= {low}, got {value!r}")
    if _is_int(m.n_truncated) and _is_int(m.n_examples) and m.n_truncated > m.n_examples:
        bad("n_truncated", f"{m.n_truncated} exceeds n_examples={m.n_examples}")
    if m.train_seed is not None and not check_int64(m.train_seed):
        bad("train_seed", f"expected an integer that fits in 64 bits or None, got {m.train_seed!r}")
    if m.n_classes is not None and (not check_int64(m.n_classes) or m.n_classes < 2):
        bad("n_classes", f"expected an integer >= 2 or None, got {m.n_classes!r}")
    if m.n_classes is not None and m.record_kind in ("qa", "retrieval", "mining"):
        bad("n_classes", f"must be None for a {m.record_kind} run, got {m.n_classes!r}")
    for name in ("severity", "wall_time_s"):
        value = getattr(m, name)
        if not _is_real(value) or not math.isfinite(value):
            bad(name, f"expected a finite number, got {value!r}")
    if _is_real(m.wall_time_s) and m.wall_time_s < 0:
        bad("wall_time_s", f"expected a number >= 0, got {m.wall_time_s!r}")
    if not isinstance(m.intermediate_tasks, tuple) or not all(
        isinstance(t, str) and t for t in m.intermediate_tasks
    ):
        bad("intermediate_tasks", f"expected a tuple of task names, got {m.intermediate_tasks!r}")
    if not isinstance(m.perturbation_params, dict) or not all(
        isinstance(k, str) for k in m.perturbation_params
    ):
        bad("perturbation_params", f"expected a dict with str keys, got {m.perturbation_params!r}")
    return out


def _is_utf8(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _is_int(value: Any) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)


# --------------------------------------------------------------------------- conversion


def records_to_columns(
    kind: str, records: Mapping[str, Any], where: str, *, partial: bool = False
) -> tuple[Columns, list[Problem]]:
    """Convert the caller's record columns into Arrow arrays of the store's types.

    Returns the arrays that converted and the problems found while converting
    (missing or unknown columns, wrong types, ragged rows). Content checks
    (finite values, label range...) are :func:`check_columns`'. With
    ``partial``, absent columns are not a problem (the checks of the columns a
    data reader knows before any model runs: ids and gold).
    """
    problems: list[Problem] = []
    known = KIND_COLUMNS[kind]
    optional = OPTIONAL_COLUMNS.get(kind, ())
    if not isinstance(records, Mapping):
        return {}, [Problem(where, f"records must be a dict of columns, got {type(records)}")]
    expected = tuple(n for n in known if n in records) if partial else known
    for name in expected:
        if name not in records:
            problems.append(
                Problem(where, f"missing column (a {kind} run needs {list(known)})", field=name)
            )
    expected += tuple(n for n in optional if n in records)
    for name in records:
        if name not in kind_columns(kind):
            allowed = f"{list(known)}" + (f", optionally {list(optional)}" if optional else "")
            problems.append(
                Problem(where, f"unknown column for a {kind} run (expected {allowed})", name)
            )
    if problems:
        return {}, problems
    try:
        n = len(records["example_id"])
    except TypeError:
        n = None
    if n == 0:
        return {}, [Problem(where, "empty run: no examples", "example_id")]
    cols: Columns = {}
    for name in expected:
        value = records[name]
        if name in ("example_id", "unit"):
            arr = _to_arrow(value, pa.string(), name, where, problems)
        elif name == "label":
            arr = _labels_to_arrow(value, where, problems)
        elif name in ("logits", "scores", "candidate_knn_mean"):
            dtype = np.float32 if name == "logits" else np.float64
            arr = _matrix_to_arrow(value, dtype, name, where, problems)
        elif name == "query_knn_mean":
            arr = _vector_to_arrow(value, name, where, problems)
        elif name == "nbest":
            arr = _structs_to_arrow(value, NBEST_TYPE, name, where, problems)
        elif name == "answers":
            arr = _structs_to_arrow(value, ANSWER_TYPE, name, where, problems)
        else:  # candidate_ids, gold_ids
            arr = _to_arrow(value, pa.list_(pa.string()), name, where, problems)
        if arr is not None:
            cols[name] = arr
    return cols, problems


def _to_arrow(
    value: Any, type_: pa.DataType, name: str, where: str, problems: list[Problem]
) -> pa.Array | None:
    if isinstance(value, str | bytes) or not hasattr(value, "__len__"):
        problems.append(Problem(where, f"expected a sequence, got {type(value).__name__}", name))
        return None
    try:
        return pa.array(value, type=type_)
    except (pa.ArrowException, TypeError, ValueError) as exc:
        # Find the first row that does not convert, to name it in the message.
        for row, item in enumerate(value):
            try:
                pa.array([item], type=type_)
            except (pa.ArrowException, TypeError, ValueError) as row_exc:
                problems.append(Problem(where, f"cannot store {item!r}: {row_exc}", name, row))
                return None
        problems.append(Problem(where, f"cannot convert to {type_}: {exc}", name))
        return None


def _numeric(
    value: Any, name: str, where: str, problems: list[Problem], ndim: int
) -> np.ndarray | None:
    if isinstance(value, str | bytes) or not hasattr(value, "__len__"):
        problems.append(Problem(where, f"expected an array, got {type(value).__name__}", name))
        return None
    try:
        arr = np.asarray(value)
    except ValueError:
        arr = None
    if arr is None or (arr.dtype == object and ndim == 2):
        # Ragged rows: numpy refuses (or makes an object array); find the first odd row.
        lengths = []
        for row, item in enumerate(value):
            try:
                lengths.append(len(item))
            except TypeError:
                problems.append(
                    Problem(where, f"expected a sequence of numbers, got {item!r}", name, row)
                )
                return None
            if lengths[row] != lengths[0]:
                problems.append(
                    Problem(
                        where,
                        f"ragged array: row has {lengths[row]} values, row 0 has {lengths[0]}",
                        name,
                        row,
                    )
                )
                return None
        problems.append(Problem(where, "not a numeric array", name))
        return None
    if arr.dtype.kind not in "iuf" and not (arr.size == 0 and arr.dtype.kind == "O"):
        problems.append(
            Problem(where, f"expected numbers, got an array of dtype {arr.dtype}", name)
        )
        return None
    if arr.ndim != ndim:
        shape = "(n, C)" if ndim == 2 else "(n,)"
        problems.append(Problem(where, f"expected shape {shape}, got {arr.shape}", name))
        return None
    return arr


def _matrix_to_arrow(
    value: Any, dtype: type, name: str, where: str, problems: list[Problem]
) -> pa.Array | None:
    arr = _numeric(value, name, where, problems, ndim=2)
    if arr is None:
        return None
    with np.errstate(over="ignore", invalid="ignore"):
        # Overflow to inf is reported by the finiteness check, with its row.
        flat: np.ndarray = np.ascontiguousarray(arr, dtype=dtype).reshape(-1)
    n, width = arr.shape
    if n * width >= 2**31:
        problems.append(Problem(where, f"too many values ({n} x {width}) for one run", name))
        return None
    offsets = pa.array(
        np.arange(0, n * width + 1, width, dtype=np.int32) if width else np.zeros(n + 1, np.int32)
    )
    return pa.ListArray.from_arrays(offsets, pa.array(flat))


def _vector_to_arrow(value: Any, name: str, where: str, problems: list[Problem]) -> pa.Array | None:
    arr = _numeric(value, name, where, problems, ndim=1)
    if arr is None:
        return None
    with np.errstate(over="ignore", invalid="ignore"):
        return pa.array(np.asarray(arr, dtype=np.float64))


def _labels_to_arrow(value: Any, where: str, problems: list[Problem]) -> pa.Array | None:
    arr = _numeric(value, "label", where, problems, ndim=1)
    if arr is None:
        return None
    if arr.dtype.kind == "f":
        problems.append(
            Problem(where, f"expected integer class indices, got dtype {arr.dtype}", "label")
        )
        return None
    if arr.dtype.kind == "u" and arr.size and arr.max() > np.iinfo(np.int64).max:
        problems.append(Problem(where, "label too large for int64", "label"))
        return None
    return pa.array(arr.astype(np.int64, copy=False))


def _structs_to_arrow(
    value: Any, type_: pa.StructType, name: str, where: str, problems: list[Problem]
) -> pa.Array | None:
    keys = {type_.field(i).name for i in range(type_.num_fields)}
    if isinstance(value, str | bytes) or not hasattr(value, "__len__"):
        problems.append(
            Problem(where, f"expected a list of lists, got {type(value).__name__}", name)
        )
        return None
    # pyarrow silently drops unknown keys and fills missing ones with null: check first.
    for row, items in enumerate(value):
        if isinstance(items, str | bytes | Mapping) or not hasattr(items, "__iter__"):
            problems.append(Problem(where, f"expected a list of dicts, got {items!r}", name, row))
            return None
        for item in items:
            if not isinstance(item, Mapping):
                problems.append(Problem(where, f"expected a dict, got {item!r}", name, row))
                return None
            if set(item) != keys:
                missing = sorted(keys - set(item))
                extra = sorted(set(item) - keys)
                what = ", ".join(
                    [f"missing key(s) {missing}"] * bool(missing)
                    + [f"unknown key(s) {extra}"] * bool(extra)
                )
                problems.append(Problem(where, f"{what} (expected {sorted(keys)})", name, row))
                return None
    return _to_arrow(value, pa.list_(type_), name, where, problems)


# --------------------------------------------------------------------------- table


def columns_to_table(kind: str, cols: Columns, metadata: dict[bytes, bytes]) -> pa.Table:
    """A table with the store schema: the kind's columns, the other kinds' left null."""
    n = len(cols["example_id"])
    arrays = [cols[f.name] if f.name in cols else pa.nulls(n, type=f.type) for f in ARROW_SCHEMA]
    return pa.Table.from_arrays(arrays, schema=ARROW_SCHEMA.with_metadata(metadata))


def check_column_names(names: list[str], where: str) -> list[Problem]:
    """Columns a run file must not have: anything outside :data:`ARROW_SCHEMA`.

    Readers that take the whole store as one table would pick an extra column
    up silently (or fail on it); xcal never writes one, so it was added later.
    """
    known = set(ARROW_SCHEMA.names)
    return [
        Problem(where, f"unknown column (a run file has only {ARROW_SCHEMA.names})", name)
        for name in names
        if name not in known
    ]


def table_to_columns(kind: str, table: pa.Table, where: str) -> tuple[Columns, list[Problem]]:
    """The kind's columns of a table read from a file, checked against the schema."""
    problems: list[Problem] = []
    cols: Columns = {}
    for name in kind_columns(kind):
        if name not in table.column_names:
            if name in KIND_COLUMNS[kind]:
                problems.append(Problem(where, f"missing column (a {kind} run needs it)", name))
            continue
        if name not in KIND_COLUMNS[kind] and table.column(name).null_count == table.num_rows:
            continue  # an optional column the run did not write
        column = table.column(name)
        expected = ARROW_SCHEMA.field(name).type
        if column.type != expected:
            problems.append(
                Problem(where, f"expected Arrow type {expected}, found {column.type}", name)
            )
            continue
        cols[name] = column.combine_chunks()
    return cols, problems


# --------------------------------------------------------------------------- content checks


def _list_width(arr: pa.Array, name: str, where: str, problems: list[Problem]) -> int | None:
    """The common length of the lists in ``arr``; a problem if null or ragged."""
    if arr.null_count:
        row = int(np.flatnonzero(arr.is_null().to_numpy(zero_copy_only=False))[0])
        problems.append(Problem(where, "missing value (null)", name, row))
        return None
    if len(arr) == 0:
        return 0
    lengths = pc.list_value_length(arr).to_numpy(zero_copy_only=False)
    bad = np.flatnonzero(lengths != lengths[0])
    if len(bad):
        row = int(bad[0])
        problems.append(
            Problem(
                where,
                f"ragged array: row has {lengths[row]} values, row 0 has {lengths[0]}"
                + _rows_text(bad),
                name,
                row,
            )
        )
        return None
    return int(lengths[0])


def matrix(arr: pa.Array, width: int) -> np.ndarray:
    """The ``(n, width)`` numpy view of a checked, non-null list array (no row loop)."""
    values = arr.flatten().to_numpy(zero_copy_only=False)
    return values.reshape(len(arr), width)


def _check_matrix(
    arr: pa.Array, name: str, where: str, problems: list[Problem]
) -> tuple[np.ndarray, int] | None:
    width = _list_width(arr, name, where, problems)
    if width is None:
        return None
    values = arr.flatten()
    if values.null_count:
        flat = int(np.flatnonzero(values.is_null().to_numpy(zero_copy_only=False))[0])
        problems.append(Problem(where, "missing value (null) inside a row", name, flat // width))
        return None
    m = matrix(arr, width)
    finite = np.isfinite(m)
    if not finite.all():
        bad_rows = np.flatnonzero(~finite.all(axis=1))
        row = int(bad_rows[0])
        col = int(np.flatnonzero(~finite[row])[0])
        problems.append(
            Problem(
                where,
                f"NaN or infinite value {float(m[row, col])} in column {col}"
                + _rows_text(bad_rows),
                name,
                row,
            )
        )
        return None
    return m, width


def _check_labels(
    arr: pa.Array, n_classes: int, where: str, problems: list[Problem], what: str
) -> None:
    if arr.null_count:
        row = int(np.flatnonzero(arr.is_null().to_numpy(zero_copy_only=False))[0])
        problems.append(Problem(where, "missing label (null)", "label", row))
        return
    labels = arr.to_numpy()
    bad = np.flatnonzero((labels < 0) | (labels >= n_classes))
    if len(bad):
        row = int(bad[0])
        problems.append(
            Problem(
                where,
                f"label {labels[row]} out of range: expected 0 <= label < {n_classes} "
                f"({what})" + _rows_text(bad),
                "label",
                row,
            )
        )


def _check_units(arr: pa.Array, where: str, problems: list[Problem]) -> None:
    # every example of a run that records units has one (a null would be a
    # cluster of its own without saying so)
    empty_or_null = pc.fill_null(pc.equal(pc.binary_length(arr), 0), True)
    missing = empty_or_null.to_numpy(zero_copy_only=False)
    if missing.any():
        rows = np.flatnonzero(missing)
        problems.append(Problem(where, "missing unit" + _rows_text(rows), "unit", int(rows[0])))


def _check_example_ids(arr: pa.Array, where: str, problems: list[Problem]) -> None:
    if arr.null_count:
        row = int(np.flatnonzero(arr.is_null().to_numpy(zero_copy_only=False))[0])
        problems.append(Problem(where, "missing example_id (null)", "example_id", row))
        return
    empty = np.flatnonzero(pc.equal(pc.binary_length(arr), 0).to_numpy(zero_copy_only=False))
    if len(empty):
        problems.append(
            Problem(where, "empty example_id" + _rows_text(empty), "example_id", int(empty[0]))
        )
    # Ids in strictly increasing order (the usual case: data order) are unique;
    # that check is a linear scan, far cheaper than hashing every id.
    increasing = len(arr) < 2 or pc.all(pc.greater(arr[1:], arr[:-1])).as_py()
    if not increasing and len(pc.unique(arr)) != len(arr):
        counts = pc.value_counts(arr)
        dup_values = counts.field("values").filter(pc.greater(counts.field("counts"), 1))
        first = dup_values[0]
        rows = np.flatnonzero(pc.equal(arr, first).to_numpy(zero_copy_only=False))
        problems.append(
            Problem(
                where,
                f"duplicate example_id {first.as_py()!r} (rows {rows[0]} and {rows[1]}; "
                f"{len(dup_values)} duplicated id(s) in all)",
                "example_id",
                int(rows[1]),
            )
        )


def _check_descending(
    scores: np.ndarray, starts: np.ndarray, name: str, where: str, problems: list[Problem]
) -> None:
    """Scores must be best first within each list (``starts`` = list offsets)."""
    if len(scores) < 2:
        return
    rising = scores[1:] > scores[:-1]  # not np.diff: it overflows on huge scores
    # A rise across a list boundary is not a rise within a list.
    boundary = np.zeros(len(scores) - 1, dtype=bool)
    inner = starts[1:-1]
    inner = inner[(inner > 0) & (inner < len(scores))]
    boundary[inner - 1] = True
    bad = np.flatnonzero(rising & ~boundary)
    if len(bad):
        row = int(np.searchsorted(starts, bad[0], side="right") - 1)
        problems.append(
            Problem(where, "scores must be sorted best first (non-increasing)", name, row)
        )


def check_columns(
    m: RunManifest,
    cols: Columns,
    where: str,
    *,
    expected_n_classes: int | None = None,
) -> list[Problem]:
    """Check a run's columns against each other and against its manifest."""
    problems: list[Problem] = []
    kind = m.record_kind
    n = len(cols["example_id"]) if "example_id" in cols else None
    for name, arr in cols.items():
        if len(arr) != n:
            problems.append(Problem(where, f"has {len(arr)} rows but example_id has {n}", name))
            return problems
    if n == 0:
        problems.append(Problem(where, "empty run: no examples", "example_id"))
        return problems
    if n is not None and n != m.n_examples:
        problems.append(
            Problem(where, f"run has {n} rows but the manifest says {m.n_examples}", "n_examples")
        )
    if "example_id" in cols:
        _check_example_ids(cols["example_id"], where, problems)
    if "unit" in cols:
        _check_units(cols["unit"], where, problems)

    if kind in ("classification", "multiple_choice"):
        name = "logits" if kind == "classification" else "scores"
        if name in cols:
            checked = _check_matrix(cols[name], name, where, problems)
            if checked is not None:
                _, width = checked
                if width < 2:
                    problems.append(Problem(where, f"expected >= 2 columns, got {width}", name))
                    return problems
                if m.n_classes is not None and width != m.n_classes:
                    problems.append(
                        Problem(
                            where,
                            f"{width} columns but the manifest says n_classes={m.n_classes}",
                            name,
                        )
                    )
                if expected_n_classes is not None and width != expected_n_classes:
                    problems.append(
                        Problem(
                            where,
                            f"{width} columns but task {m.task!r} has {expected_n_classes} classes",
                            name,
                        )
                    )
                if "label" in cols:
                    _check_labels(cols["label"], width, where, problems, f"{width} classes")
    elif kind == "qa":
        if "nbest" in cols:
            _check_nbest(cols["nbest"], where, problems)
        if "answers" in cols:
            _check_answers(cols["answers"], where, problems)
    elif kind in ("retrieval", "mining"):
        _check_retrieval(kind, cols, where, problems)
    return problems


def _check_retrieval(kind: str, cols: Columns, where: str, problems: list[Problem]) -> None:
    k = None
    if "candidate_ids" in cols:
        k = _list_width(cols["candidate_ids"], "candidate_ids", where, problems)
        if k is not None and cols["candidate_ids"].flatten().null_count:
            problems.append(Problem(where, "null candidate id", "candidate_ids"))
        if k == 0:
            problems.append(Problem(where, "no candidates (k = 0)", "candidate_ids"))
    if "scores" in cols:
        checked = _check_matrix(cols["scores"], "scores", where, problems)
        if checked is not None:
            s, width = checked
            if k is not None and width != k:
                problems.append(
                    Problem(where, f"{width} scores per row but {k} candidate ids", "scores")
                )
            starts = np.arange(0, s.size + 1, max(width, 1))
            _check_descending(s.reshape(-1), starts, "scores", where, problems)
    if "gold_ids" in cols:
        gold = cols["gold_ids"]
        if gold.null_count:
            problems.append(Problem(where, "missing gold ids (null)", "gold_ids", _null_row(gold)))
        else:
            lengths = pc.list_value_length(gold).to_numpy(zero_copy_only=False)
            empty = np.flatnonzero(lengths == 0)
            # A mining query without a partner is the common case, not an error.
            if kind == "retrieval" and len(empty):
                problems.append(
                    Problem(where, "no gold id" + _rows_text(empty), "gold_ids", int(empty[0]))
                )
            if gold.flatten().null_count:
                problems.append(Problem(where, "null gold id", "gold_ids"))
    if "query_knn_mean" in cols:
        q = cols["query_knn_mean"]
        if q.null_count:
            problems.append(Problem(where, "missing value (null)", "query_knn_mean", _null_row(q)))
        else:
            bad = np.flatnonzero(~np.isfinite(q.to_numpy(zero_copy_only=False)))
            if len(bad):
                problems.append(
                    Problem(
                        where,
                        f"NaN or infinite value {q[int(bad[0])].as_py()}" + _rows_text(bad),
                        "query_knn_mean",
                        int(bad[0]),
                    )
                )
    if "candidate_knn_mean" in cols:
        checked = _check_matrix(cols["candidate_knn_mean"], "candidate_knn_mean", where, problems)
        if checked is not None and k is not None and checked[1] != k:
            problems.append(
                Problem(
                    where,
                    f"{checked[1]} values per row but {k} candidate ids",
                    "candidate_knn_mean",
                )
            )


def _null_row(arr: pa.Array) -> int:
    return int(np.flatnonzero(arr.is_null().to_numpy(zero_copy_only=False))[0])


def _check_nbest(arr: pa.Array, where: str, problems: list[Problem]) -> None:
    if arr.null_count:
        problems.append(Problem(where, "missing n-best list (null)", "nbest", _null_row(arr)))
        return
    offsets = arr.offsets.to_numpy() - arr.offsets[0].as_py()
    items = arr.flatten()

    def row_of(i: int) -> int:
        return int(np.searchsorted(offsets, i, side="right") - 1)

    if items.null_count:
        problems.append(Problem(where, "null n-best entry", "nbest", row_of(_null_row(items))))
        return
    fields = {name: items.field(name) for name in ("text", "start_char", "end_char")}
    for name, field_arr in fields.items():
        if field_arr.null_count:
            problems.append(
                Problem(
                    where, f"n-best entry without {name}", "nbest", row_of(_null_row(field_arr))
                )
            )
            return
    start = fields["start_char"].to_numpy()
    end = fields["end_char"].to_numpy()
    bad = np.flatnonzero((start < 0) | (end < start))
    if len(bad):
        i = int(bad[0])
        problems.append(
            Problem(
                where,
                f"bad character offsets start_char={start[i]}, end_char={end[i]} "
                "(expected 0 <= start_char <= end_char)",
                "nbest",
                row_of(i),
            )
        )
    for name in ("start_logit", "end_logit", "score"):
        values = items.field(name)
        if values.null_count:
            problems.append(
                Problem(where, f"n-best entry without {name}", "nbest", row_of(_null_row(values)))
            )
            return
        v = values.to_numpy()
        nonfinite = np.flatnonzero(~np.isfinite(v))
        if len(nonfinite):
            i = int(nonfinite[0])
            problems.append(
                Problem(where, f"NaN or infinite {name} {float(v[i])}", "nbest", row_of(i))
            )
            return
    _check_descending(items.field("score").to_numpy(), offsets, "nbest", where, problems)


def _check_answers(arr: pa.Array, where: str, problems: list[Problem]) -> None:
    if arr.null_count:
        problems.append(Problem(where, "missing answers (null)", "answers", _null_row(arr)))
        return
    offsets = arr.offsets.to_numpy() - arr.offsets[0].as_py()
    empty = np.flatnonzero(np.diff(offsets) == 0)
    if len(empty):
        problems.append(
            Problem(where, "no gold answer" + _rows_text(empty), "answers", int(empty[0]))
        )
    items = arr.flatten()

    def row_of(i: int) -> int:
        return int(np.searchsorted(offsets, i, side="right") - 1)

    if items.null_count:
        problems.append(Problem(where, "null answer", "answers", row_of(_null_row(items))))
        return
    for name in ("text", "answer_start"):
        values = items.field(name)
        if values.null_count:
            problems.append(
                Problem(where, f"answer without {name}", "answers", row_of(_null_row(values)))
            )
            return
    starts = items.field("answer_start").to_numpy()
    bad = np.flatnonzero(starts < 0)
    if len(bad):
        problems.append(
            Problem(where, f"negative answer_start {starts[bad[0]]}", "answers", row_of(bad[0]))
        )


# --------------------------------------------------------------------------- records back


def columns_to_records(kind: str, cols: Columns) -> dict[str, Any]:
    """The column dict :meth:`PredictionStore.write_run` accepts, from checked columns."""
    out: dict[str, Any] = {"example_id": cols["example_id"].to_pylist()}
    for name in kind_columns(kind)[1:]:
        if name not in cols:
            continue  # an optional column the run did not write
        arr = cols[name]
        if name == "label":
            out[name] = arr.to_numpy().astype(np.int64, copy=False)
        elif name in ("logits", "scores", "candidate_knn_mean"):
            width = int(pc.list_value_length(arr)[0].as_py()) if len(arr) else 0
            out[name] = matrix(arr, width)
        elif name == "query_knn_mean":
            out[name] = arr.to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
        else:
            out[name] = arr.to_pylist()
    return out


def check_input_records(m: RunManifest, records: Mapping[str, Any], where: str) -> list[Problem]:
    """What the store would refuse in the columns known before any model runs.

    ``records`` holds some of the run's columns (typically ``example_id`` and
    the gold: ``label``, ``answers`` or ``gold_ids``); they get the same
    conversion and checks as at write time, so a run that could never be
    stored is refused before hours of model work rather than after.

    Examples
    --------
    >>> m = RunManifest(model="m", task="tatoeba", split="test", language="deu",
    ...                 record_kind="retrieval", input_fingerprint="f", n_examples=2)
    >>> [p.message for p in check_input_records(m, {"example_id": ["a", "b"],
    ...                                             "gold_ids": [["x"], []]}, "here")]
    ['no gold id']
    """
    cols, problems = records_to_columns(m.record_kind, records, where, partial=True)
    if problems:
        return problems
    return check_columns(m, cols, where)
