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
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xcal.infer.modeling import ModelSpec, ModelSpecError

if TYPE_CHECKING:
    from xcal.settings import GridFile


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
        from xcal.settings import PerturbationTable, SettingsError, validate

        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        if isinstance(values["severity"], int) and not isinstance(values["severity"], bool):
            values["severity"] = float(values["severity"])  # 1 is the severity 1.0
        try:
            table = validate(PerturbationTable, values, f"perturbation {self.name}")
        except SettingsError as exc:
            raise GridError(str(exc)) from None
        object.__setattr__(self, "severity", table.severity)  # -0.0 is 0.0
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
        """A spec from a ``name:severity[:seed=S]`` string or a table (checked, naming ``where``)."""
        from xcal.settings import PerturbationTable, SettingsError, validate

        if isinstance(value, str):
            try:
                return cls.parse(value)
            except GridError as exc:
                raise GridError(f"{where}: {exc}") from None
        if isinstance(value, PerturbationTable):
            table = value
        else:
            try:
                table = validate(PerturbationTable, value, where)
            except SettingsError as exc:
                raise GridError(str(exc)) from None
        fields = tuple(table.fields) if table.fields is not None else None
        try:
            return cls(table.name, table.severity, table.seed, dict(table.params), fields)
        except GridError as exc:
            raise GridError(f"{where}: {exc}") from None

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
            from xcal.registry import did_you_mean

            raise GridError(did_you_mean("perturbation", spec.name, ["none", *known]))
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

    def limited(self, n: int) -> TaskSpec:
        """This task with only the first ``n`` examples of its range (``--limit``).

        The limit is an example range, so it is part of the stored split name.

        >>> TaskSpec("xnli").limited(600).examples, TaskSpec("xnli", examples="100:").limited(50).examples
        ('0:600', '100:150')
        >>> TaskSpec("xnli", examples="100:120").limited(50).examples
        '100:120'
        """
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise GridError(f"Expected `limit` to be a positive int, got {n!r}")
        start, stop = self.example_range or (0, None)
        end = start + n if stop is None else min(stop, start + n)
        return dataclasses.replace(self, examples=f"{start}:{end}")


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
                # Stored under the code the data uses (--lang zho runs XNLI's zh).
                langs = list(dict.fromkeys(task.resolve_languages(data_dir, t.languages, split)))
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
    check_grid_file(data, str(path))
    return data


def check_grid_file(data: Mapping[str, Any], where: str) -> GridFile:
    """Check a grid file's values against :class:`xcal.settings.GridFile` (strict types).

    Raises
    ------
    GridError
        Naming ``where``, each bad key and the type it should have.
    """
    from xcal.settings import GridFile, SettingsError, validate

    try:
        return validate(GridFile, data, where)
    except SettingsError as exc:
        raise GridError(str(exc)) from None


def _as_list(value: Any) -> list[Any]:
    """A checked grid value as a list: None is empty, one name or table is a list of one."""
    if value is None:
        return []
    from pydantic import BaseModel

    if isinstance(value, str | BaseModel):
        return [value]
    return list(value)


def _languages(value: Any) -> tuple[str, ...] | None:
    """One code, a list, or "all" (None: every language in the data)."""
    if value is None:
        return None
    langs = [value] if isinstance(value, str) else list(value)
    return None if langs == ["all"] else tuple(langs)


def grid_from_dict(
    data: Mapping[str, Any],
    where: str = "config",
    *,
    model_defaults: Mapping[str, Any] | None = None,
) -> GridConfig:
    """Build a grid from a config dict (see the module docstring for the keys).

    Every value is checked against :class:`xcal.settings.GridFile` first, in
    strict mode: an error names ``where``, the key and the expected type.
    """
    cfg = check_grid_file(data, where)
    defaults = dict(model_defaults or {})
    # Model options set at the top level apply to every model that does not set them.
    for key in ("allow_new_head", "max_length"):
        if getattr(cfg, key) is not None:
            defaults.setdefault(key, getattr(cfg, key))
    models: list[ModelSpec] = []
    entries = [("models", i, m) for i, m in enumerate(_as_list(cfg.models))]
    entries += [("model", i, m) for i, m in enumerate(_as_list(cfg.model))]
    for key, i, m in entries:
        table = {"name": m} if isinstance(m, str) else m.model_dump(exclude_unset=True)
        try:
            models.append(ModelSpec.from_mapping({**defaults, **table}, f"{where}: {key}[{i}]"))
        except ModelSpecError as exc:
            raise GridError(str(exc)) from None

    default_langs = _languages(cfg.languages)
    tasks: list[TaskSpec] = []
    for t in _as_list(cfg.tasks) + _as_list(cfg.task):
        if isinstance(t, str):
            tasks.append(TaskSpec(t, default_langs, cfg.split))
            continue
        langs = _languages(t.languages) if "languages" in t.model_fields_set else default_langs
        tasks.append(TaskSpec(t.name, langs, t.split or cfg.split, t.examples))

    perts = [
        PerturbationSpec.from_value(p, f"{where}: perturbations[{i}]")
        for i, p in enumerate(_as_list(cfg.perturbations))
    ] or [PerturbationSpec()]
    if cfg.seeds is not None:
        seeds = list(cfg.seeds)
        perts = [
            p if p.name == "none" else dataclasses.replace(p, seed=s)
            for p in perts
            for s in (seeds if p.name != "none" else [0])
        ]
        perts = list(dict.fromkeys(perts))
    grid_keys = {"models", "model", "tasks", "task", "languages", "perturbations", "seeds", "split"}
    settings = {k: data[k] for k in data if k not in grid_keys | {"allow_new_head", "max_length"}}
    try:
        grid = Grid(tuple(models), tuple(tasks), tuple(perts))
    except GridError as exc:
        raise GridError(f"{where}: {exc}") from None
    return GridConfig(grid, settings)
