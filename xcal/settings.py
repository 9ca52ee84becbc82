"""The typed schema of everything a user or a file hands to xcal: grid files, options, manifests.

One place decides what a setting may be. Grid files (TOML/YAML), command-line
options, the Python API's :class:`~xcal.infer.ModelSpec`,
:class:`~xcal.infer.grid.PerturbationSpec` and run options, and the run
manifests read back from the store are all checked against the pydantic models
below in strict mode:

- no string becomes a boolean (``trust_remote_code = "false"`` is an error,
  not a truthy string that turns remote code on);
- no string becomes a list (``intermediate_tasks = "mnli"`` is an error, not
  ``('m', 'n', 'l', 'i')``);
- integers are bounded (a seed must fit the store's int64 column);
- unknown keys are errors that list the known ones.

Every error names the file (or "command line"), the key and the expected type;
:func:`format_errors` writes them. Validation runs before any model work.

Examples
--------
>>> try:
...     validate(ModelTable, {"name": "m", "trust_remote_code": "false"}, "grid.toml: model[0]")
... except SettingsError as exc:
...     print(exc)
grid.toml: model[0]: key 'trust_remote_code': expected a boolean (true or false, unquoted), got 'false' (str)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

# Integers that fit the store's int64 columns (seeds, counts).
Int64 = Annotated[int, Field(ge=INT64_MIN, le=INT64_MAX)]
PositiveInt = Annotated[int, Field(ge=1, le=INT64_MAX)]
NonEmptyStr = Annotated[str, Field(min_length=1)]
MaxLength = Annotated[int, Field(ge=8, le=1_000_000)]
# Padded tokens per batch: at least one short input, at most what an index can address.


def _check_batch_tokens(value: int | str) -> int | str:
    if value == "auto" or (isinstance(value, int) and 16 <= value <= 2**31 - 1):
        return value
    raise ValueError("an integer >= 16 or 'auto'")


# Padded tokens per batch, or "auto": sized from free GPU memory (xcal.infer.memory).
BatchTokens = Annotated[int | str, AfterValidator(_check_batch_tokens)]
Severity = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]

DTYPE_NAMES: tuple[str, ...] = (
    "auto", "fp32", "float32", "bf16", "bfloat16", "fp16", "float16", "half",
)  # fmt: skip
DType = Literal["auto", "fp32", "float32", "bf16", "bfloat16", "fp16", "float16", "half"]


class SettingsError(ValueError):
    """A setting has the wrong type, range or name (the message names file, key and type)."""


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


# --------------------------------------------------------------------------- grid file tables


class ModelTable(_Strict):
    """A model of a grid (see :class:`xcal.infer.ModelSpec` for the meaning of each key)."""

    name: NonEmptyStr
    revision: NonEmptyStr | None = None
    label: NonEmptyStr | None = None
    scoring: Literal["auto", "head", "lm"] = "auto"
    pooling: Literal["auto", "mean", "cls", "last"] = "auto"
    prefix: str | None = None
    max_length: MaxLength | None = None
    allow_new_head: bool = False
    trust_remote_code: bool = False
    intermediate_tasks: Sequence[NonEmptyStr] = ()
    train_seed: Int64 | None = None


class TaskTable(_Strict):
    """A task of a grid: a name, languages (a list, one code, or "all"), split, example range."""

    name: NonEmptyStr
    languages: Sequence[NonEmptyStr] | NonEmptyStr | None = None
    split: NonEmptyStr | None = None
    examples: NonEmptyStr | None = None


class PerturbationTable(_Strict):
    """A perturbation of a grid; ``-0.0`` is the same severity as ``0.0``."""

    name: NonEmptyStr = "none"
    severity: Severity = 0.0
    seed: Int64 = 0
    params: Mapping[str, Any] = Field(default_factory=dict)
    fields: Sequence[NonEmptyStr] | None = None

    @field_validator("severity")
    @classmethod
    def _no_negative_zero(cls, value: float) -> float:
        return value + 0.0  # -0.0 + 0.0 == +0.0: one cell, not two


class QATable(_Strict):
    """QA windowing settings (see :class:`xcal.infer.qa.QASettings`)."""

    max_length: PositiveInt = 384
    doc_stride: PositiveInt = 128
    max_query_length: PositiveInt = 64
    max_answer_length: PositiveInt = 30
    n_best: PositiveInt = 20


class RunOptionsTable(_Strict):
    """Run settings that are not part of the grid (see :class:`xcal.infer.RunOptions`)."""

    batch_tokens: BatchTokens = 16384
    device: NonEmptyStr = "auto"
    dtype: DType = "auto"
    limit: PositiveInt | None = None
    top_k: Annotated[int, Field(ge=1, le=1_000_000)] = 10
    overwrite: bool = False
    threads: Annotated[int, Field(ge=1, le=4096)] | None = None
    share_layers: bool = False


class GridFile(_Strict):
    """The top level of a grid file (TOML or YAML); see :mod:`xcal.infer.grid`."""

    models: Sequence[NonEmptyStr | ModelTable] | NonEmptyStr | None = None
    model: Sequence[ModelTable] | ModelTable | None = None
    tasks: Sequence[NonEmptyStr | TaskTable] | NonEmptyStr | None = None
    task: Sequence[TaskTable] | TaskTable | None = None
    languages: Sequence[NonEmptyStr] | NonEmptyStr | None = None
    perturbations: Sequence[NonEmptyStr | PerturbationTable] | NonEmptyStr | None = None
    seeds: Annotated[Sequence[Int64], Field(min_length=1)] | None = None
    split: NonEmptyStr | None = None
    store: NonEmptyStr | None = None
    data_dir: NonEmptyStr | None = None
    batch_tokens: BatchTokens | None = None
    dtype: DType | None = None
    device: NonEmptyStr | None = None
    limit: PositiveInt | None = None
    top_k: Annotated[int, Field(ge=1, le=1_000_000)] | None = None
    overwrite: bool | None = None
    allow_new_head: bool | None = None
    max_length: MaxLength | None = None
    qa: QATable | None = None
    threads: Annotated[int, Field(ge=1, le=4096)] | None = None
    share_layers: bool | None = None


GRID_FILE_KEYS: frozenset[str] = frozenset(GridFile.model_fields)

# The table type behind each key that holds tables (to list a table's known keys).
_NESTED: dict[str, type[BaseModel]] = {
    "models": ModelTable,
    "model": ModelTable,
    "tasks": TaskTable,
    "task": TaskTable,
    "perturbations": PerturbationTable,
    "qa": QATable,
}


# --------------------------------------------------------------------------- errors

_EXPECTED = {
    "bool_type": "a boolean (true or false, unquoted)",
    "int_type": "an integer",
    "float_type": "a number",
    "string_type": "a string",
    "list_type": "a list",
    "tuple_type": "a list",
    "sequence_str": "a list of strings (not one string)",
    "is_instance_of": "a list",
    "dict_type": "a table",
    "mapping_type": "a table",
    "model_type": "a table",
    "model_attributes_type": "a table",
    "literal_error": None,
    "finite_number": "a finite number",
    "too_short": "a non-empty list",
    "string_too_short": "a non-empty string",
}

_BOUNDS = {
    "greater_than_equal": ">=",
    "greater_than": ">",
    "less_than_equal": "<=",
    "less_than": "<",
}

T = TypeVar("T", bound=BaseModel)


_BRANCHES = {"ModelTable", "TaskTable", "PerturbationTable", "QATable", "str", "int", "float"}


def _keys(loc: Sequence[int | str]) -> list[int | str]:
    """The keys and indices of an error location, without pydantic's validator names."""
    # pydantic names the union branch or sequence validator it tried ("ModelTable",
    # "json-or-python[...]"); those are not keys of the file.
    return [p for p in loc if isinstance(p, int) or (p.isidentifier() and p not in _BRANCHES)]


def _loc_text(loc: Sequence[int | str]) -> str:
    out = ""
    for part in _keys(loc):
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


def _known_keys(model: type[BaseModel], loc: Sequence[int | str]) -> list[str]:
    """The keys allowed in the table an unknown key was found in."""
    names = [p for p in _keys(loc)[:-1] if isinstance(p, str)]
    for name in names:
        nested = _NESTED.get(name)
        if nested is None:
            break
        model = nested
    return sorted(model.model_fields)


def _got(value: Any) -> str:
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{text} ({type(value).__name__})"


def _error_text(err: Mapping[str, Any]) -> str:
    kind = err["type"]
    key = _loc_text(err["loc"])
    where = f"key '{key}'" if key else "value"
    if kind in ("extra_forbidden", "unexpected_keyword_argument"):
        return f"unknown key '{key}'"
    if kind == "missing":
        return f"missing key '{key}'"
    expected = _EXPECTED.get(kind)
    bound = _BOUNDS.get(kind)
    if bound is not None:
        limit = next(iter((err.get("ctx") or {"": "?"}).values()))
        expected = f"a value {bound} {limit}"
    if expected is None:
        msg = str(err["msg"]).removeprefix("Value error, ")
        expected = msg[0].lower() + msg[1:] if msg else kind
        expected = expected.removeprefix("input should be ")
    return f"{where}: expected {expected}, got {_got(err.get('input'))}"


def _best_errors(errors: list[Any]) -> list[Any]:
    """One error per key; of a union's branches, the one that got furthest in.

    ``models = [..., {name = "x", label = 5}]`` fails both as one name and as a
    list; the error inside the list (the longer location) is the useful one.
    """
    keys = [_loc_text(err["loc"]) for err in errors]

    def deeper(key: str) -> bool:
        return any(k != key and k.startswith((key + ".", key + "[")) for k in keys)

    out: dict[str, Any] = {}
    for key, err in zip(keys, errors, strict=True):
        if not deeper(key):
            out.setdefault(key, err)
    return list(out.values())


def format_errors(
    exc: ValidationError, where: str, *, model: type[BaseModel] | None = None, cli: bool = False
) -> str:
    """One line per invalid key: ``where: key 'k': expected TYPE, got VALUE (type)``.

    With ``cli=True`` keys are named as options (``option --batch-tokens``).
    """
    lines = []
    for err in _best_errors(exc.errors()):
        text = _error_text(err)
        if cli:
            key = _loc_text(err["loc"])
            text = text.replace(f"key '{key}'", f"option --{key.replace('_', '-')}")
        if err["type"] == "extra_forbidden" and model is not None:
            text += f"; known: {', '.join(_known_keys(model, err['loc']))}"
        lines.append(f"{where}: {text}")
    return "\n".join(dict.fromkeys(lines))


def validate(model: type[T], data: Any, where: str, *, cli: bool = False) -> T:
    """Validate ``data`` against ``model`` or raise :class:`SettingsError` naming ``where``.

    Examples
    --------
    >>> validate(QATable, {"n_best": 5}, "grid.toml: qa").n_best
    5
    """
    if not isinstance(data, Mapping):
        raise SettingsError(f"{where}: expected a table, got {_got(data)}")
    try:
        return model.model_validate(dict(data))
    except ValidationError as exc:
        raise SettingsError(format_errors(exc, where, model=model, cli=cli)) from None


def check_int64(value: Any) -> bool:
    """True for an int (not a bool) that fits a signed 64-bit column.

    >>> check_int64(2**63), check_int64(-5), check_int64(True)
    (False, True, False)
    """
    import numbers

    return (
        isinstance(value, numbers.Integral)
        and not isinstance(value, bool)
        and INT64_MIN <= int(value) <= INT64_MAX
    )


def canonical_severity(value: float) -> float:
    """``value`` as a float with ``-0.0`` turned into ``0.0`` (one cell, not two).

    >>> str(canonical_severity(-0.0))
    '0.0'
    """
    return float(value) + 0.0
