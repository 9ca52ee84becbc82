"""Grids of models x tasks x languages x perturbations, config files and shards.

A grid expands into cells, one stored run each. The order of cells is a pure
function of the grid and the languages present in the data directory, so
``--shard i/N`` gives every job the same partition with no coordination: job
``i`` takes the ``i``-th of N contiguous blocks (contiguous so that a job
loads as few distinct models as possible).

Config files are TOML or YAML::

    # grid.toml
    store = "preds"               # optional; the CLI's --store wins
    data_dir = "../shared/data/xtreme"
    batch_tokens = 16384
    dtype = "bf16"

    models = ["xlm-roberta-large", "runs/xlmr-mnli"]   # names, or tables:
    [[model]]
    name = "runs/xlmr-mnli-xnli"
    label = "xlmr-large+mnli"
    intermediate_tasks = ["mnli"]
    train_seed = 1

    tasks = ["xnli", "pawsx"]     # all languages in the data dir, default split
    [[task]]
    name = "tatoeba"
    languages = ["deu", "fra", "cmn"]

    languages = ["de", "fr"]      # default for tasks that list none ("all" = every language)
    perturbations = ["none", "word_shuffle:0.25", "char_noise:0.1:seed=2"]
    seeds = [0, 1]                # perturbation seeds (each perturbation x each seed)
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xcal.infer.modeling import ModelSpec, ModelSpecError


class GridError(ValueError):
    """A grid, config file, shard or perturbation spec is invalid."""


# --------------------------------------------------------------------------- perturbations


@dataclass(frozen=True)
class PerturbationSpec:
    """One perturbation setting of a grid: name, severity, seed and parameter overrides.

    Examples
    --------
    >>> PerturbationSpec.parse("word_shuffle:0.25")
    PerturbationSpec(name='word_shuffle', severity=0.25, seed=0, params={}, fields=None)
    >>> PerturbationSpec.parse("char_noise:0.1:seed=2").seed
    2
    >>> PerturbationSpec.parse("none").severity
    0.0
    """

    name: str = "none"
    severity: float = 0.0
    seed: int = 0
    params: Mapping[str, Any] = field(default_factory=dict)
    fields: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        sev = self.severity
        if isinstance(sev, bool) or not isinstance(sev, int | float) or math.isnan(sev):
            raise GridError(f"perturbation {self.name}: severity must be a number, got {sev!r}")
        if not 0.0 <= float(sev) <= 1.0:
            raise GridError(f"perturbation {self.name}: severity must be in [0, 1], got {sev}")
        object.__setattr__(self, "severity", float(sev))
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise GridError(f"perturbation {self.name}: seed must be an int, got {self.seed!r}")
        if self.name == "none" and (self.severity or self.params or self.fields):
            raise GridError("perturbation 'none' takes no severity, parameters or fields")
        if self.fields is not None:
            object.__setattr__(self, "fields", tuple(self.fields))
        object.__setattr__(self, "params", dict(self.params))

    def __hash__(self) -> int:
        return hash(
            (self.name, self.severity, self.seed, repr(sorted(self.params.items())), self.fields)
        )

    @classmethod
    def parse(cls, text: str) -> PerturbationSpec:
        """Parse ``name``, ``name:severity`` or ``name:severity:seed=S`` (or ``:S``)."""
        parts = [p.strip() for p in str(text).strip().split(":")]
        if not parts[0]:
            raise GridError(f"bad perturbation {text!r}: expected name[:severity[:seed=S]]")
        name = parts[0]
        if name == "none":
            if len(parts) > 1:
                raise GridError(f"bad perturbation {text!r}: 'none' takes no severity")
            return cls()
        if len(parts) < 2 or len(parts) > 3:
            raise GridError(
                f"bad perturbation {text!r}: expected name:severity[:seed=S], e.g. word_shuffle:0.25"
            )
        try:
            severity = float(parts[1])
        except ValueError:
            raise GridError(
                f"bad perturbation {text!r}: severity {parts[1]!r} is not a number"
            ) from None
        seed = 0
        if len(parts) == 3:
            raw = parts[2].removeprefix("seed=")
            if not re.fullmatch(r"-?\d+", raw):
                raise GridError(f"bad perturbation {text!r}: seed {parts[2]!r} is not an int")
            seed = int(raw)
        return cls(name, severity, seed)

    @classmethod
    def from_value(cls, value: Any, where: str) -> PerturbationSpec:
        if isinstance(value, str):
            return cls.parse(value)
        if isinstance(value, Mapping):
            known = {f.name for f in dataclasses.fields(cls)}
            unknown = sorted(set(value) - known)
            if unknown:
                raise GridError(
                    f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
                )
            data = dict(value)
            if "fields" in data and data["fields"] is not None:
                data["fields"] = tuple(data["fields"])
            return cls(**data)
        raise GridError(f"{where}: expected 'name:severity' or a table, got {value!r}")

    @property
    def label(self) -> str:
        if self.name == "none":
            return "none"
        extra = f":{self.seed}" if self.seed else ""
        return f"{self.name}:{self.severity:g}{extra}"


def check_perturbations(specs: Iterable[PerturbationSpec]) -> None:
    """Raise :class:`GridError` for unknown perturbation names or parameters (listing the known)."""
    specs = list(specs)
    if all(s.name == "none" for s in specs):
        return
    from xcal.perturb import get_perturbation, perturbation_names

    known = perturbation_names()
    for spec in specs:
        if spec.name == "none":
            continue
        if spec.name not in known:
            raise GridError(f"unknown perturbation {spec.name!r}; known: none, {', '.join(known)}")
        try:
            get_perturbation(spec.name, **spec.params)
        except (TypeError, ValueError) as exc:
            raise GridError(f"perturbation {spec.name!r}: {exc}") from None


# --------------------------------------------------------------------------- tasks and cells


@dataclass(frozen=True)
class TaskSpec:
    """A task of a grid: languages (None = every language in the data), split, example range.

    ``examples`` is a Python-style slice ``"start:stop"`` of each language's
    examples in file order, e.g. ``"1000:1500"``: on parallel data (XNLI,
    PAWS-X, XQuAD) the same range is the same examples in every language, so
    training, calibration and evaluation can use disjoint line ranges. A
    range is part of the stored split name (``dev[1000:1500]``), so different
    ranges are different runs.

    Examples
    --------
    >>> TaskSpec("xnli", ("de",), examples="1000:1500").example_range
    (1000, 1500)
    """

    name: str
    languages: tuple[str, ...] | None = None
    split: str | None = None
    examples: str | None = None

    def __post_init__(self) -> None:
        if self.languages is not None:
            object.__setattr__(self, "languages", tuple(self.languages))
        if self.examples is not None:
            m = re.fullmatch(r"\s*(\d*)\s*:\s*(\d*)\s*", str(self.examples))
            start = int(m.group(1)) if m and m.group(1) else 0
            stop = int(m.group(2)) if m and m.group(2) else None
            if not m or (stop is not None and stop <= start):
                raise GridError(
                    f"task {self.name}: examples must be 'start:stop' with start < stop "
                    f"(either may be empty), got {self.examples!r}"
                )

    @property
    def example_range(self) -> tuple[int, int | None] | None:
        if self.examples is None:
            return None
        a, _, b = str(self.examples).partition(":")
        return (int(a) if a.strip() else 0, int(b) if b.strip() else None)


@dataclass(frozen=True)
class Cell:
    """One model x task x split x language x perturbation: one stored run."""

    model: ModelSpec
    task: str
    split: str
    language: str
    perturbation: PerturbationSpec
    example_range: tuple[int, int | None] | None = None

    @property
    def split_label(self) -> str:
        """The split as stored: ``dev``, or ``dev[1000:1500]`` for an example range."""
        if self.example_range is None:
            return self.split
        start, stop = self.example_range
        return f"{self.split}[{start}:{'' if stop is None else stop}]"

    def describe(self) -> str:
        return (
            f"{self.model.store_name} | {self.task}/{self.split_label} | {self.language} | "
            f"{self.perturbation.label}"
        )


@dataclass(frozen=True)
class Grid:
    """Models x tasks x languages x perturbations."""

    models: tuple[ModelSpec, ...]
    tasks: tuple[TaskSpec, ...]
    perturbations: tuple[PerturbationSpec, ...] = (PerturbationSpec(),)

    def __post_init__(self) -> None:
        if not self.models:
            raise GridError("the grid has no models (--model or a config file's models)")
        if not self.tasks:
            raise GridError("the grid has no tasks (--task or a config file's tasks)")
        if not self.perturbations:
            raise GridError("the grid has no perturbations (use 'none' for clean inputs)")
        labels = [m.store_name for m in self.models]
        dup = sorted({x for x in labels if labels.count(x) > 1})
        if dup:
            raise GridError(
                f"model name(s) listed twice: {', '.join(dup)} (give each a distinct label)"
            )

    def cells(self, data_dir: str | os.PathLike[str]) -> list[Cell]:
        """Every cell, validated against the data directory, in a fixed order.

        Raises
        ------
        xcal.tasks.UnknownTaskError, xcal.tasks.MissingDataError, GridError
            Unknown task or perturbation; a language or split without data
            (the message lists what exists).
        """
        from xcal.tasks import get_task

        check_perturbations(self.perturbations)
        resolved: list[tuple[str, str, list[str], Any]] = []
        for t in self.tasks:
            task = get_task(t.name)
            split = task.check_split(t.split)
            if t.languages is None:
                langs = task.languages(data_dir, split)
                if not langs:
                    task.check_languages(data_dir, ["(any)"], split)
            else:
                langs = list(dict.fromkeys(t.languages))
                task.check_languages(data_dir, langs, split)
            resolved.append((task.name, split, langs, t.example_range))
        cells = [
            Cell(model, task_name, split, lang, pert, rng)
            for model in self.models
            for task_name, split, langs, rng in resolved
            for lang in langs
            for pert in self.perturbations
        ]
        keys = [
            (c.model.store_name, c.task, c.split_label, c.language, c.perturbation) for c in cells
        ]
        if len(set(keys)) != len(keys):
            raise GridError("the grid lists the same cell twice (a task or perturbation repeated)")
        return cells


def parse_shard(text: str | None) -> tuple[int, int]:
    """Parse ``i/N`` (0 <= i < N) into ``(i, N)``; None means the whole grid.

    >>> parse_shard("2/4")
    (2, 4)
    >>> parse_shard(None)
    (0, 1)
    """
    if text is None or text == "":
        return (0, 1)
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", str(text))
    if not m:
        raise GridError(f"bad --shard {text!r}: expected i/N with 0 <= i < N, e.g. 0/4")
    i, n = int(m.group(1)), int(m.group(2))
    if n < 1 or not 0 <= i < n:
        raise GridError(f"bad --shard {text!r}: expected 0 <= i < N (shards are numbered from 0)")
    return (i, n)


def resolve_shard(text: str | None, environ: Mapping[str, str] | None = None) -> tuple[int, int]:
    """The shard of this job: ``--shard i/N`` if given, else the Slurm array task's.

    Without ``--shard``, a job of a Slurm job array (``sbatch --array=0-7``)
    takes shard ``(SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN) / step`` of
    ``SLURM_ARRAY_TASK_COUNT``, so every task of the array runs its own block
    of the grid whatever the array's first index and step. Outside an array
    the job runs the whole grid.

    Parameters
    ----------
    text : str or None
        The ``--shard`` option.
    environ : mapping, optional
        The environment (default :data:`os.environ`).

    Examples
    --------
    >>> resolve_shard(None, {"SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_COUNT": "8"})
    (3, 8)
    >>> env = {"SLURM_ARRAY_TASK_ID": "5", "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_COUNT": "8"}
    >>> resolve_shard(None, env), resolve_shard("0/2", env), resolve_shard(None, {})
    ((4, 8), (0, 2), (0, 1))
    """
    if text is not None and text != "":
        return parse_shard(text)
    env = os.environ if environ is None else environ
    if "SLURM_ARRAY_TASK_ID" not in env:
        return (0, 1)

    def number(name: str, default: int | None = None) -> int:
        value = env.get(name)
        if value is None or value == "":
            if default is None:
                raise GridError(
                    f"SLURM_ARRAY_TASK_ID is set but {name} is not: pass --shard i/N "
                    "(this Slurm is too old to tell the array's size)"
                )
            return default
        try:
            return int(value)
        except ValueError:
            raise GridError(f"{name}={value!r} is not an integer; pass --shard i/N") from None

    task_id = number("SLURM_ARRAY_TASK_ID")
    count = number("SLURM_ARRAY_TASK_COUNT")
    first = number("SLURM_ARRAY_TASK_MIN", 0)
    step = max(number("SLURM_ARRAY_TASK_STEP", 1), 1)
    offset, rest = divmod(task_id - first, step)
    if rest or not 0 <= offset < count:
        raise GridError(
            f"Slurm array task {task_id} is not the {count} evenly spaced tasks from "
            f"{first} in steps of {step} (an --array list such as 1,3,7?): submit "
            f"--array=0-{count - 1}, or pass --shard i/N"
        )
    return (offset, count)


def shard_cells(cells: Sequence[Cell], shard: tuple[int, int]) -> list[Cell]:
    """The ``i``-th of ``N`` contiguous, near-equal blocks of ``cells``.

    >>> shard_cells(list("abcdefg"), (0, 3)), shard_cells(list("abcdefg"), (2, 3))
    (['a', 'b'], ['e', 'f', 'g'])
    """
    i, n = shard
    total = len(cells)
    return list(cells[i * total // n : (i + 1) * total // n])


# --------------------------------------------------------------------------- config files

_CONFIG_KEYS = {
    "models", "model", "tasks", "task", "languages", "perturbations", "seeds", "split",
    "store", "data_dir", "batch_tokens", "dtype", "device", "limit", "top_k", "overwrite",
    "allow_new_head", "max_length", "qa", "threads",
}  # fmt: skip


@dataclass
class GridConfig:
    """A parsed config file: the grid plus run settings it sets (None = not set)."""

    grid: Grid
    settings: dict[str, Any]


def read_config(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a TOML (``.toml``) or YAML (``.yaml``/``.yml``) config into a dict."""
    path = Path(path)
    if not path.is_file():
        raise GridError(f"config file {path} not found")
    text = path.read_bytes()
    if path.suffix == ".toml":
        import tomllib

        try:
            data = tomllib.loads(text.decode("utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise GridError(f"{path}: invalid TOML ({exc})") from None
    elif path.suffix in (".yaml", ".yml"):
        import yaml

        try:
            data = yaml.safe_load(text.decode("utf-8"))  # safe_load: no object construction
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise GridError(f"{path}: invalid YAML ({exc})") from None
    else:
        raise GridError(f"{path}: config files must end in .toml, .yaml or .yml")
    if not isinstance(data, dict):
        raise GridError(f"{path}: expected a table of settings at the top level")
    unknown = sorted(set(data) - _CONFIG_KEYS)
    if unknown:
        raise GridError(
            f"{path}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(_CONFIG_KEYS))}"
        )
    return data


def _list(value: Any, where: str) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, str | Mapping):
        return [value]
    if isinstance(value, list | tuple):
        return list(value)
    raise GridError(f"{where}: expected a list, got {value!r}")


def grid_from_dict(
    data: Mapping[str, Any],
    where: str = "config",
    *,
    model_defaults: Mapping[str, Any] | None = None,
) -> GridConfig:
    """Build a grid from a config dict (see the module docstring for the keys)."""
    defaults = dict(model_defaults or {})
    # Model options set at the top level apply to every model that does not set them.
    for key in ("allow_new_head", "max_length"):
        if key in data:
            defaults.setdefault(key, data[key])
    models: list[ModelSpec] = []
    for i, m in enumerate(
        _list(data.get("models"), f"{where}: models") + _list(data.get("model"), f"{where}: model")
    ):
        entry = {"name": m} if isinstance(m, str) else m
        if not isinstance(entry, Mapping):
            raise GridError(f"{where}: models[{i}] must be a name or a table, got {m!r}")
        merged = {**defaults, **entry}
        if "intermediate_tasks" in merged:
            merged["intermediate_tasks"] = tuple(merged["intermediate_tasks"])
        try:
            models.append(ModelSpec.from_mapping(merged, f"{where}: models[{i}]"))
        except (ModelSpecError, TypeError) as exc:
            raise GridError(str(exc)) from None

    default_langs = data.get("languages")
    if isinstance(default_langs, str):
        default_langs = [default_langs]
    if default_langs is not None and list(default_langs) == ["all"]:
        default_langs = None
    split = data.get("split")
    tasks: list[TaskSpec] = []
    for i, t in enumerate(
        _list(data.get("tasks"), f"{where}: tasks") + _list(data.get("task"), f"{where}: task")
    ):
        entry = {"name": t} if isinstance(t, str) else t
        if not isinstance(entry, Mapping) or "name" not in entry:
            raise GridError(f"{where}: tasks[{i}] must be a name or a table with 'name', got {t!r}")
        unknown = sorted(set(entry) - {"name", "languages", "split"})
        if unknown:
            raise GridError(
                f"{where}: tasks[{i}]: unknown key(s) {', '.join(unknown)}; known: languages, name, split"
            )
        langs = entry.get("languages", default_langs)
        if isinstance(langs, str):
            langs = [langs]
        if langs is not None and list(langs) == ["all"]:
            langs = None
        tasks.append(
            TaskSpec(
                str(entry["name"]),
                tuple(str(x) for x in langs) if langs is not None else None,
                entry.get("split", split),
                entry.get("examples"),
            )
        )

    perts = [
        PerturbationSpec.from_value(p, f"{where}: perturbations[{i}]")
        for i, p in enumerate(_list(data.get("perturbations"), f"{where}: perturbations"))
    ] or [PerturbationSpec()]
    seeds = data.get("seeds")
    if seeds is not None:
        seeds = _list(seeds, f"{where}: seeds")
        if not seeds or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
            raise GridError(
                f"{where}: seeds must be a non-empty list of ints, got {data.get('seeds')!r}"
            )
        perts = [
            p if p.name == "none" else dataclasses.replace(p, seed=s)
            for p in perts
            for s in (seeds if p.name != "none" else [0])
        ]
        perts = list(dict.fromkeys(perts))
    grid_keys = {"models", "model", "tasks", "task", "languages", "perturbations", "seeds", "split"}
    settings = {k: data[k] for k in data if k not in grid_keys | {"allow_new_head", "max_length"}}
    return GridConfig(Grid(tuple(models), tuple(tasks), tuple(perts)), settings)
