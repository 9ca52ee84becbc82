"""The prediction store: one Parquet file per run under Hive-style partitions.

Guarantees (see the README section "The prediction store"):

* a write is atomic: the run is written to a hidden temporary file in its
  final directory, flushed and fsynced, then renamed over the final name with
  ``os.replace``; readers see the complete run or no run;
* writing a run whose key and input fingerprint are already stored is a no-op,
  with another fingerprint it is refused unless ``overwrite=True``;
* writers of the same run key are serialised by a lock file per run
  (``_locks/<run_id>.lock``, an ``flock`` held by the OS and released if the
  process dies), so concurrent writers never duplicate or interleave a run;
* reading never modifies the store, and every run read is checked.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import secrets
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from filelock import FileLock, Timeout

import xcal
from xcal.store.errors import (
    Problem,
    RunNotFoundError,
    SchemaVersionError,
    StoreConflictError,
    StoreError,
    StoreValidationError,
)
from xcal.store.layout import (
    LOCK_DIR,
    RUN_SUFFIX,
    is_hidden,
    relative_run_path,
    run_id_for,
    run_path,
    temp_name,
    temp_run_id,
)
from xcal.store.manifest import KEY_FIELDS, SCHEMA_VERSION, ManifestError, RunManifest
from xcal.store.schema import (
    META_MANIFEST,
    META_MANIFEST_SHA256,
    META_SCHEMA_VERSION,
    Columns,
    check_column_names,
    check_columns,
    check_manifest,
    columns_to_records,
    columns_to_table,
    kind_columns,
    matrix,
    records_to_columns,
    table_to_columns,
)

if TYPE_CHECKING:
    import pandas as pd

MANIFEST_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(RunManifest))
FILTER_FIELDS: tuple[str, ...] = ("run_id", *MANIFEST_FIELDS)
# The manifest columns repeated on every row of a tidy load().
TIDY_KEY_COLUMNS: tuple[str, ...] = ("run_id", "record_kind", *KEY_FIELDS)


@dataclass(frozen=True)
class ClassificationArrays:
    """A classification (or multiple-choice) run as numpy arrays.

    ``example_ids`` is an object array of str, ``logits`` ``(n, C)`` (float32 for
    classification; the float64 option scores for multiple choice), ``labels``
    ``(n,)`` int64.
    """

    example_ids: np.ndarray
    logits: np.ndarray
    labels: np.ndarray
    run_id: str
    manifest: RunManifest


@dataclass(frozen=True)
class RunInfo:
    """A run file found in the store, with its manifest (read from the footer)."""

    run_id: str
    path: Path
    manifest: RunManifest


class WriteOutcome(NamedTuple):
    """What :meth:`PredictionStore.write_run_outcome` did."""

    run_id: str
    written: bool  # False: the same run was already stored, nothing new was written


@dataclass(frozen=True)
class StoreScan:
    """What a walk over the store found.

    ``problems`` are run files whose footer or manifest cannot be trusted;
    ``temp_files`` are hidden leftovers of interrupted (or running) writes;
    ``stray_files`` are visible files that are not runs, which would break
    dataset readers that read every file under the root.
    """

    runs: list[RunInfo]
    problems: list[Problem]
    temp_files: list[Path]
    stray_files: list[Path]


def _write_table(table: pa.Table, sink: BinaryIO) -> None:
    """Serialise a run table (a module function so tests can make it fail)."""
    pq.write_table(table, sink, compression="zstd", write_page_checksum=True)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _plain(value: Any) -> Any:
    """numpy scalars as Python scalars, so manifests serialise and compare simply."""
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value


def normalize_manifest(manifest: RunManifest) -> tuple[RunManifest, list[Problem]]:
    """The manifest with plain Python types, and any problem found doing so."""
    if not isinstance(manifest, RunManifest):
        raise TypeError(f"expected a RunManifest, got {type(manifest).__name__}")
    changes: dict[str, Any] = {}
    for f in dataclasses.fields(manifest):
        value = getattr(manifest, f.name)
        plain = _plain(value)
        if plain is not value:
            changes[f.name] = plain
    if isinstance(manifest.severity, int | np.integer) and not isinstance(manifest.severity, bool):
        changes["severity"] = float(manifest.severity)
    elif isinstance(manifest.severity, float) and manifest.severity == 0.0:
        changes["severity"] = 0.0  # -0.0 is the same cell as 0.0
    if isinstance(manifest.intermediate_tasks, list):
        changes["intermediate_tasks"] = tuple(manifest.intermediate_tasks)
    where = f"run {describe(manifest)}"
    try:
        # Stored params are what JSON gives back (tuples become lists), so that the
        # written manifest equals the one read.
        params = json.loads(
            json.dumps(manifest.perturbation_params, sort_keys=True, allow_nan=False)
        )
    except (TypeError, ValueError) as exc:
        return manifest, [Problem(where, f"not JSON-serialisable: {exc}", "perturbation_params")]
    if params != manifest.perturbation_params:
        changes["perturbation_params"] = params
    return (dataclasses.replace(manifest, **changes) if changes else manifest), []


def describe(m: RunManifest) -> str:
    """A short human label of a run's key, for messages."""
    return (
        f"{m.task}/{m.split} model={m.model} language={m.language} "
        f"perturbation={m.perturbation}@{m.severity} seed={m.perturbation_seed}"
    )


def _key_values(m: RunManifest) -> dict[str, Any]:
    return {name: getattr(m, name) for name in KEY_FIELDS}


def manifest_json(m: RunManifest) -> bytes:
    return json.dumps(m.to_dict(), sort_keys=True, ensure_ascii=False, allow_nan=False).encode()


def _manifest_from_metadata(kv: Mapping[bytes, bytes] | None, where: str) -> RunManifest:
    """Parse and check the xcal entries of a file's key-value metadata."""
    kv = kv or {}
    if META_SCHEMA_VERSION not in kv:
        raise StoreValidationError(
            [
                Problem(
                    where, "not an xcal run file (no xcal.schema_version in the Parquet metadata)"
                )
            ]
        )
    raw_version = kv[META_SCHEMA_VERSION]
    try:
        version = int(raw_version)
    except ValueError:
        version = None
    if version != SCHEMA_VERSION:
        raise SchemaVersionError(
            f"{where}: field 'schema_version': unknown schema version "
            f"{raw_version.decode(errors='replace')!r} (this xcal reads {SCHEMA_VERSION}); "
            "upgrade xcal to read it"
        )
    raw = kv.get(META_MANIFEST)
    if raw is None:
        raise StoreValidationError([Problem(where, "no xcal.manifest in the Parquet metadata")])
    digest = kv.get(META_MANIFEST_SHA256, b"").decode(errors="replace")
    if hashlib.sha256(raw).hexdigest() != digest:
        raise StoreValidationError(
            [Problem(where, "manifest checksum mismatch: the file's metadata is corrupted")]
        )
    try:
        # Strictly typed (xcal.settings): a string is never read as a list or a bool.
        manifest = RunManifest.from_json(raw, "manifest")
    except ManifestError as exc:
        raise StoreValidationError([Problem(where, str(exc), "manifest")]) from exc
    problems = check_manifest(manifest, where)
    if problems:
        raise StoreValidationError(problems)
    return manifest


class PredictionStore:
    """A directory of runs; see :func:`open_store`.

    Parameters
    ----------
    root : path
        The store directory. It is created by the first write; reading a
        store that does not exist finds no runs.
    lock_timeout : float
        Seconds a writer waits for another writer of the same run key.

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> from xcal.store import RunManifest, open_store
    >>> store = open_store(tempfile.mkdtemp())
    >>> m = RunManifest(model="m", task="xnli", split="dev", language="de",
    ...                 record_kind="classification", input_fingerprint="f", n_examples=2)
    >>> run_id = store.write_run(m, {"example_id": ["a", "b"],
    ...                              "logits": np.array([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0]]),
    ...                              "label": np.array([0, 2])})
    >>> store.has_run(m)
    True
    >>> store.load_classification(run_id).logits.shape
    (2, 3)
    >>> store.runs(task="xnli")[["task", "language", "n_examples", "n_classes"]]
       task language  n_examples  n_classes
    0  xnli       de           2          3
    """

    def __init__(self, root: str | os.PathLike[str], *, lock_timeout: float = 600.0) -> None:
        self.root = Path(root)
        self.lock_timeout = lock_timeout
        # Footer cache: path -> ((mtime_ns, size, inode), manifest).
        self._footers: dict[Path, tuple[tuple[int, int, int], RunManifest]] = {}
        # run id -> file, filled by walks of the store (checked before use).
        self._paths: dict[str, Path] = {}

    def __repr__(self) -> str:
        return f"PredictionStore({str(self.root)!r})"

    # ------------------------------------------------------------------ paths

    @staticmethod
    def run_id(manifest: RunManifest) -> str:
        """The id of the run a manifest describes (a hash of its key)."""
        return run_id_for(_key_values(manifest))

    def path_for(self, manifest: RunManifest) -> Path:
        """Where the run of ``manifest`` lives (whether or not it is stored)."""
        return run_path(self.root, _key_values(manifest))

    def _lock(self, run_id: str) -> FileLock:
        lock_dir = self.root / LOCK_DIR
        lock_dir.mkdir(parents=True, exist_ok=True)
        # preserve_lock_file: deleting a lock file on release lets a third process
        # lock a fresh inode while a second still holds the old one.
        return FileLock(
            lock_dir / f"{run_id}.lock", timeout=self.lock_timeout, preserve_lock_file=True
        )

    @contextlib.contextmanager
    def _locked(self, run_id: str) -> Iterator[None]:
        try:
            with self._lock(run_id):
                yield
        except Timeout as exc:
            raise StoreError(
                f"timed out after {self.lock_timeout}s waiting for the lock of run {run_id} "
                f"({self.root / LOCK_DIR / run_id}.lock): another process is writing it"
            ) from exc

    # ------------------------------------------------------------------ scanning

    def scan(self) -> StoreScan:
        """Walk the store: run files (with manifests), temporary and stray files."""
        runs: list[RunInfo] = []
        problems: list[Problem] = []
        temps: list[Path] = []
        strays: list[Path] = []
        if not self.root.is_dir():
            return StoreScan(runs, problems, temps, strays)
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames[:] = sorted(d for d in dirnames if not is_hidden(d))
            for name in sorted(filenames):
                path = Path(dirpath) / name
                if is_hidden(name):
                    if temp_run_id(name) is not None:
                        temps.append(path)
                    continue
                if not name.endswith(RUN_SUFFIX):
                    strays.append(path)
                    continue
                try:
                    manifest = self._footer(path)
                    self._check_location(path, manifest)
                except StoreValidationError as exc:
                    problems.extend(exc.problems)
                    continue
                except StoreError as exc:
                    problems.append(Problem(str(path), str(exc).removeprefix(f"{path}: ")))
                    continue
                runs.append(RunInfo(path.name.removesuffix(RUN_SUFFIX), path, manifest))
        return StoreScan(runs, problems, temps, strays)

    def _footer(self, path: Path) -> RunManifest:
        """The manifest in a run file's footer (cached while the file is unchanged)."""
        try:
            st = path.stat()
        except OSError as exc:
            raise StoreError(f"{path}: cannot stat: {exc}") from exc
        sig = (st.st_mtime_ns, st.st_size, st.st_ino)
        cached = self._footers.get(path)
        if cached is not None and cached[0] == sig:
            return cached[1]
        try:
            metadata = pq.read_metadata(path)
        except Exception as exc:  # pyarrow raises several types on garbage bytes
            raise StoreError(f"{path}: unreadable Parquet file: {exc}") from exc
        manifest = _manifest_from_metadata(metadata.metadata, str(path))
        self._footers[path] = (sig, manifest)
        return manifest

    def _check_location(self, path: Path, manifest: RunManifest) -> None:
        """A file must sit where its manifest's key puts it (no moved or copied runs)."""
        expected = relative_run_path(_key_values(manifest))
        try:
            actual = path.relative_to(self.root)
        except ValueError:
            actual = path
        if actual != expected:
            raise StoreValidationError(
                [
                    Problem(
                        str(path),
                        f"file is not where its manifest's key puts it ({expected}); "
                        "was it moved, renamed or copied?",
                        "manifest",
                    )
                ]
            )

    def _find(self, run_id: str) -> Path:
        if not isinstance(run_id, str) or len(run_id) != 16:
            raise RunNotFoundError(f"no run {run_id!r} in {self.root} (run ids are 16 hex digits)")
        cached = self._paths.get(run_id)
        if cached is not None and cached.is_file():
            return cached
        # A miss walks the store once and remembers every run it passes.
        for path in self._run_files():
            self._paths[path.name.removesuffix(RUN_SUFFIX)] = path
        if run_id in self._paths and self._paths[run_id].is_file():
            return self._paths[run_id]
        raise RunNotFoundError(f"no run {run_id!r} in {self.root}")

    def _run_files(self) -> Iterator[Path]:
        if not self.root.is_dir():
            return
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames[:] = [d for d in dirnames if not is_hidden(d)]
            for name in filenames:
                if not is_hidden(name) and name.endswith(RUN_SUFFIX):
                    yield Path(dirpath) / name

    # ------------------------------------------------------------------ queries

    def has_run(self, manifest: RunManifest) -> bool:
        """True if a run with this key and this input fingerprint is stored.

        Raises :class:`StoreError` if a file is at the run's place but cannot be read.
        """
        manifest, problems = normalize_manifest(manifest)
        problems += check_manifest(manifest, f"run {describe(manifest)}")
        if problems:
            raise StoreValidationError(problems)
        path = self.path_for(manifest)
        if not path.exists():
            return False
        stored = self._footer(path)
        return (
            stored.key() == manifest.key()
            and stored.input_fingerprint == manifest.input_fingerprint
        )

    def manifest(self, run_id: str) -> RunManifest:
        """The manifest of a stored run."""
        path = self._find(run_id)
        manifest = self._footer(path)
        self._check_location(path, manifest)
        return manifest

    def iter_runs(self, **filters: Any) -> list[RunInfo]:
        """The runs matching ``filters``; raises if a run file cannot be read."""
        _check_filters(filters)
        scan = self.scan()
        if scan.problems:
            raise StoreValidationError(scan.problems)
        return [r for r in scan.runs if _matches(r, filters)]

    def runs(self, **filters: Any) -> pd.DataFrame:
        """One row per run: ``run_id``, every manifest field and ``path``.

        Reads only the Parquet footers. ``filters`` are manifest field names (or
        ``run_id``) with a value or a list of accepted values, e.g.
        ``runs(task="xnli", language=["de", "fr"])``. ``perturbation_params``
        is shown as canonical JSON text so the frame can be grouped on.
        """
        import pandas as pd

        rows = []
        for info in self.iter_runs(**filters):
            row: dict[str, Any] = {"run_id": info.run_id}
            row.update(info.manifest.to_dict())
            row["intermediate_tasks"] = info.manifest.intermediate_tasks
            row["perturbation_params"] = _params_json(info.manifest.perturbation_params)
            row["path"] = str(info.path)
            rows.append(row)
        return pd.DataFrame(rows, columns=["run_id", *MANIFEST_FIELDS, "path"])

    # ------------------------------------------------------------------ reading runs

    def _read(
        self, path: Path, *, expected_n_classes: int | None = None
    ) -> tuple[RunManifest, Columns]:
        """Read and check one run file; every problem raises StoreValidationError."""
        where = str(path)
        try:
            pf = pq.ParquetFile(path, page_checksum_verification=True)
        except Exception as exc:
            raise StoreError(f"{where}: unreadable Parquet file: {exc}") from exc
        with pf:
            # Footer and data from one open file: a concurrent overwrite (a rename)
            # cannot mix the manifest of one version with the rows of another.
            manifest = _manifest_from_metadata(pf.metadata.metadata, where)
            self._check_location(path, manifest)
            extra = check_column_names(pf.schema_arrow.names, where)
            if extra:
                raise StoreValidationError(extra)
            names = set(pf.schema_arrow.names)
            wanted = [c for c in kind_columns(manifest.record_kind) if c in names]
            try:
                # Threads only pay off on big runs; small ones are read faster without.
                big = pf.metadata.num_rows > 100_000
                table = pf.read(columns=wanted, use_threads=big)
            except Exception as exc:
                raise StoreError(f"{where}: cannot read the run's data: {exc}") from exc
        cols, problems = table_to_columns(manifest.record_kind, table, where)
        if not problems:
            problems = check_columns(manifest, cols, where, expected_n_classes=expected_n_classes)
        if problems:
            raise StoreValidationError(problems)
        return manifest, cols

    def load_records(self, run_id: str) -> dict[str, Any]:
        """A run's records as the column dict :meth:`write_run` accepts."""
        manifest, cols = self._read(self._find(run_id))
        return columns_to_records(manifest.record_kind, cols)

    def load_classification(self, run_id: str) -> ClassificationArrays:
        """A classification run as numpy arrays (no Python loop over rows).

        Raises :class:`StoreError` for another record kind or an invalid run.
        """
        return self._load_arrays(run_id, "classification", "logits")

    def load_multiple_choice(self, run_id: str) -> ClassificationArrays:
        """A multiple-choice run as arrays; ``.logits`` holds the option scores."""
        return self._load_arrays(run_id, "multiple_choice", "scores")

    def _load_arrays(self, run_id: str, kind: str, column: str) -> ClassificationArrays:
        path = self._find(run_id)
        manifest = self._footer(path)
        if manifest.record_kind != kind:
            raise StoreError(f"{path}: run {run_id} is a {manifest.record_kind} run, not {kind}")
        manifest, cols = self._read(path)
        n = len(cols["example_id"])
        width = len(cols[column].flatten()) // n
        return ClassificationArrays(
            example_ids=cols["example_id"].to_numpy(zero_copy_only=False),
            logits=matrix(cols[column], width),
            labels=cols["label"].to_numpy().astype(np.int64, copy=False),
            run_id=run_id,
            manifest=manifest,
        )

    def load(self, **filters: Any) -> pd.DataFrame:
        """A tidy frame: one row per example per run matching ``filters``.

        Columns: ``run_id``, ``record_kind``, the key fields (``task``, ``split``,
        ``model``, ``language``, ``perturbation``, ``severity``,
        ``perturbation_seed``, ``perturbation_params`` as JSON text) and the
        record columns of the runs' kinds, as ``pandas.read_parquet`` gives
        them (a row of ``logits`` is a float32 array, of ``nbest`` an array of
        dicts; columns a kind lacks are missing values).
        """
        import pandas as pd

        tables = []
        for info in self.iter_runs(**filters):
            manifest, cols = self._read(info.path)
            n = len(cols["example_id"])
            columns: dict[str, pa.Array] = {}
            for name in TIDY_KEY_COLUMNS:
                if name == "run_id":
                    value: Any = info.run_id
                elif name == "perturbation_params":
                    value = _params_json(manifest.perturbation_params)
                else:
                    value = getattr(manifest, name)
                columns[name] = pa.repeat(value, n)
            columns.update(cols)
            tables.append(pa.table(columns))
        if not tables:
            return pd.DataFrame(columns=list(TIDY_KEY_COLUMNS))
        # One Arrow concat and one conversion: much cheaper than a frame per run.
        return pa.concat_tables(tables, promote_options="default").to_pandas()

    # ------------------------------------------------------------------ writing

    def write_run(
        self,
        manifest: RunManifest,
        records: Mapping[str, Any],
        *,
        overwrite: bool = False,
        expected_n_classes: int | None = None,
    ) -> str:
        """Validate and atomically write one run; return its run id.

        :meth:`write_run_outcome` also says whether this call stored anything.

        Parameters
        ----------
        manifest : RunManifest
            The run's description. ``xcal_version`` and ``created_at`` are
            filled when empty; ``n_classes`` from the logits' width when None.
        records : dict of columns
            By ``manifest.record_kind``, see the README section on the store.
        overwrite : bool
            Replace a stored run with the same key but another fingerprint
            (otherwise :class:`StoreConflictError`).
        expected_n_classes : int, optional
            The task's number of classes; a run with another width is refused.

        Returns
        -------
        str
            The run id. Writing a run whose key and fingerprint are already
            stored changes nothing and returns the stored run's id.
        """
        return self.write_run_outcome(
            manifest, records, overwrite=overwrite, expected_n_classes=expected_n_classes
        ).run_id

    def write_run_outcome(
        self,
        manifest: RunManifest,
        records: Mapping[str, Any],
        *,
        overwrite: bool = False,
        expected_n_classes: int | None = None,
    ) -> WriteOutcome:
        """:meth:`write_run`, returning the run id and whether this call wrote the file.

        ``written`` is False when the same run (key and input fingerprint) was
        already stored, e.g. by a concurrent job: the call stored nothing new.
        """
        manifest, problems = normalize_manifest(manifest)
        where = f"run {describe(manifest)}"
        problems += check_manifest(manifest, where)
        if problems:
            raise StoreValidationError(problems)
        cols, problems = records_to_columns(manifest.record_kind, records, where)
        if problems:
            raise StoreValidationError(problems)
        matrix_col = {"classification": "logits", "multiple_choice": "scores"}.get(
            manifest.record_kind
        )
        changes: dict[str, Any] = {}
        if matrix_col is not None and manifest.n_classes is None and len(cols[matrix_col]):
            changes["n_classes"] = len(cols[matrix_col][0])
        if not manifest.xcal_version:
            changes["xcal_version"] = xcal.__version__
        if not manifest.created_at:
            changes["created_at"] = datetime.now(UTC).isoformat(timespec="seconds")
        manifest = dataclasses.replace(manifest, **changes)
        problems = check_columns(manifest, cols, where, expected_n_classes=expected_n_classes)
        if problems:
            raise StoreValidationError(problems)

        raw = manifest_json(manifest)
        metadata = {
            META_SCHEMA_VERSION: str(SCHEMA_VERSION).encode(),
            META_MANIFEST: raw,
            META_MANIFEST_SHA256: hashlib.sha256(raw).hexdigest().encode(),
        }
        table = columns_to_table(manifest.record_kind, cols, metadata)
        run_id = self.run_id(manifest)
        path = self.path_for(manifest)
        with self._locked(run_id):
            if path.exists():
                try:
                    stored = self._footer(path)
                except StoreError as exc:
                    if not overwrite:
                        raise StoreError(
                            f"{path}: a run file is already there but cannot be read ({exc}); "
                            "check it with `xcal store validate`, or pass overwrite=True "
                            "to replace it"
                        ) from exc
                    stored = None
                if stored is not None and not overwrite:
                    if stored.input_fingerprint == manifest.input_fingerprint:
                        self._remove_temps(path.parent, run_id)
                        return WriteOutcome(run_id, written=False)
                    raise StoreConflictError(
                        f"{path}: run {describe(manifest)} is already stored with input "
                        f"fingerprint {stored.input_fingerprint[:12]}..., this one has "
                        f"{manifest.input_fingerprint[:12]}...; the inputs differ. "
                        "Pass overwrite=True to replace the stored run."
                    )
            self._atomic_write(path, table, run_id)
        return WriteOutcome(run_id, written=True)

    def _remove_temps(self, directory: Path, run_id: str) -> list[Path]:
        """Remove this run's leftover temporary files (call with the run's lock held)."""
        removed = []
        for tmp in directory.glob(f".{run_id}.*"):
            if temp_run_id(tmp.name) == run_id:
                with contextlib.suppress(FileNotFoundError):
                    tmp.unlink()
                    removed.append(tmp)
        return removed

    def _atomic_write(self, path: Path, table: pa.Table, run_id: str) -> None:
        directory = path.parent
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create {directory}: {exc}") from exc
        self._remove_temps(directory, run_id)
        tmp = directory / temp_name(run_id, secrets.token_hex(4))
        try:
            with open(tmp, "xb") as sink:
                _write_table(table, sink)
                sink.flush()
                os.fsync(sink.fileno())
            os.replace(tmp, path)
        except BaseException as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            if isinstance(exc, OSError | pa.ArrowException):
                raise StoreError(
                    f"{path}: writing the run failed, nothing was stored: {exc}"
                ) from exc
            raise
        self._footers.pop(path, None)
        # Make the rename and any new partition directories durable.
        current = directory
        while True:
            _fsync_dir(current)
            if current == self.root or self.root not in current.parents:
                break
            current = current.parent

    # ------------------------------------------------------------------ validation

    def validate(
        self,
        *,
        expected_n_classes: Mapping[str, int] | None = None,
        fix: bool = False,
    ) -> list[Problem]:
        """Check every file of the store; return every problem found.

        Reads each run in full (schema version, manifest, location, every
        record check). ``expected_n_classes`` maps a task name to its number of
        classes. Nothing is modified unless ``fix=True``, which removes
        temporary files left by interrupted writes (never a run file).
        """
        problems: list[Problem] = []
        if not self.root.exists():
            return [Problem(str(self.root), "store directory does not exist")]
        if not self.root.is_dir():
            return [Problem(str(self.root), "not a directory")]
        scan = self.scan()
        problems.extend(scan.problems)
        bad_paths = {p.where for p in scan.problems}
        for info in scan.runs:
            if str(info.path) in bad_paths:
                continue
            expected = (expected_n_classes or {}).get(info.manifest.task)
            try:
                self._read(info.path, expected_n_classes=expected)
            except StoreValidationError as exc:
                problems.extend(exc.problems)
            except StoreError as exc:
                problems.append(Problem(str(info.path), str(exc).removeprefix(f"{info.path}: ")))
        for path in scan.stray_files:
            problems.append(
                Problem(
                    str(path),
                    "not a run file: dataset readers (pandas, pyarrow, DuckDB) that read "
                    "the whole store would try to read it; move it out of the store",
                )
            )
        for tmp in scan.temp_files:
            problems.append(self._handle_temp(tmp, fix))
        return problems

    def _handle_temp(self, tmp: Path, fix: bool) -> Problem:
        if not fix:
            return Problem(
                str(tmp),
                "temporary file of an interrupted (or running) write; readers ignore it, "
                "`xcal store validate --fix` removes it",
                level="warning",
            )
        run_id = temp_run_id(tmp.name)
        assert run_id is not None  # scan() only lists names temp_run_id accepts
        lock = self._lock(run_id)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            return Problem(
                str(tmp), "a write of this run is in progress; left alone", level="warning"
            )
        try:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        finally:
            lock.release()
        return Problem(str(tmp), "removed stale temporary file", level="warning")


def _params_json(params: Mapping[str, Any]) -> str:
    return json.dumps(params, sort_keys=True, ensure_ascii=False)


def _check_filters(filters: Mapping[str, Any]) -> None:
    unknown = sorted(set(filters) - set(FILTER_FIELDS))
    if unknown:
        raise ValueError(
            f"unknown filter(s) {unknown}; filter on manifest fields: {', '.join(FILTER_FIELDS)}"
        )


def _matches(info: RunInfo, filters: Mapping[str, Any]) -> bool:
    for name, wanted in filters.items():
        value: Any = info.run_id if name == "run_id" else getattr(info.manifest, name)
        if name == "perturbation_params":
            options = wanted if isinstance(wanted, list | tuple) else [wanted]
            texts = {o if isinstance(o, str) else _params_json(o) for o in options}
            if _params_json(value) not in texts:
                return False
        elif name == "intermediate_tasks":
            # A tuple of names is one value; a list of tuples is a set of accepted values.
            if isinstance(wanted, list) and all(isinstance(w, list | tuple) for w in wanted):
                options = [tuple(w) for w in wanted]
            else:
                options = [tuple(wanted) if not isinstance(wanted, str) else (wanted,)]
            if tuple(value) not in options:
                return False
        elif isinstance(wanted, list | tuple | set | frozenset):
            if value not in wanted:
                return False
        elif value != wanted:
            return False
    return True


def open_store(path: str | os.PathLike[str], *, lock_timeout: float = 600.0) -> PredictionStore:
    """Open the prediction store at ``path`` (created by the first write).

    Examples
    --------
    >>> import tempfile
    >>> store = open_store(tempfile.mkdtemp())
    >>> len(store.runs())
    0
    """
    return PredictionStore(path, lock_timeout=lock_timeout)
