"""How identifiers are printed in tables and figures: ``xnli`` as XNLI, ``char_noise 0.05`` as
"char. noise 5%".

The results keep the identifiers (task, system, perturbation and language
codes); :class:`DisplayNames` maps them to the names a paper prints. Defaults
cover the registered tasks and perturbations; systems and languages print as
given. A user overrides any of them in the API or in a file (TOML, JSON or
YAML) with one table per kind::

    [tasks]
    xnli = "XNLI (test)"
    [systems]
    "+pawsx" = "+PAWS-X"
    [perturbations]
    char_noise = "typos"
    [languages]
    zh = "Chinese"
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Names of the registered tasks as papers print them.
DEFAULT_TASKS: dict[str, str] = {
    "xnli": "XNLI",
    "pawsx": "PAWS-X",
    "xcopa": "XCOPA",
    "tatoeba": "Tatoeba",
    "bucc2018": "BUCC 2018",
    "xquad": "XQuAD",
    "mlqa": "MLQA",
    "tydiqa": "TyDi QA",
}

#: Names of the perturbations (the severity is appended, see :meth:`DisplayNames.condition`).
DEFAULT_PERTURBATIONS: dict[str, str] = {
    "none": "clean",
    "char_delete": "char. deletion",
    "char_insert": "char. insertion",
    "char_noise": "char. noise",
    "char_substitute": "char. substitution",
    "char_swap": "char. swap",
    "clause_swap": "clause swap",
    "code_switch": "code-switching",
    "function_word_drop": "function-word drop",
    "function_word_move": "function-word move",
    "lowercase": "lower case",
    "ngram_shuffle": "n-gram shuffle",
    "remove_diacritics": "no diacritics",
    "remove_punctuation": "no punctuation",
    "transliterate": "transliteration",
    "whitespace_noise": "whitespace noise",
    "word_shuffle": "word shuffle",
}

_KINDS = ("tasks", "systems", "perturbations", "languages")


@dataclass(frozen=True)
class DisplayNames:
    """Identifier -> printed name, per kind; unknown identifiers print as they are.

    Parameters
    ----------
    tasks, systems, perturbations, languages : mapping
        Overrides, on top of the defaults (:data:`DEFAULT_TASKS`,
        :data:`DEFAULT_PERTURBATIONS`; systems and languages have none).

    Examples
    --------
    >>> names = DisplayNames(systems={"+pawsx": "+PAWS-X"})
    >>> names.task("pawsx"), names.system("+pawsx"), names.system("baseline")
    ('PAWS-X', '+PAWS-X', 'baseline')
    >>> names.condition("char_noise", 0.05), names.condition("none", 0.0)
    ('char. noise 5%', 'clean')
    """

    tasks: Mapping[str, str] = field(default_factory=dict)
    systems: Mapping[str, str] = field(default_factory=dict)
    perturbations: Mapping[str, str] = field(default_factory=dict)
    languages: Mapping[str, str] = field(default_factory=dict)

    def task(self, name: object) -> str:
        """The printed name of a task."""
        key = str(name)
        return self.tasks.get(key, DEFAULT_TASKS.get(key, key))

    def system(self, name: object) -> str:
        """The printed name of a system (model label)."""
        return self.systems.get(str(name), str(name))

    def language(self, code: object) -> str:
        """The printed name of a language (its code unless overridden)."""
        return self.languages.get(str(code), str(code))

    def perturbation(self, name: object) -> str:
        """The printed name of a perturbation, without its severity."""
        key = str(name)
        return self.perturbations.get(key, DEFAULT_PERTURBATIONS.get(key, key))

    def condition(self, perturbation: object, severity: float) -> str:
        """Perturbation and severity, the severity in percent: ``char. noise 5%``.

        >>> DisplayNames().condition("word_shuffle", 0.25)
        'word shuffle 25%'
        """
        if str(perturbation) == "none":
            return self.perturbation("none")
        return f"{self.perturbation(perturbation)} {float(severity) * 100:g}%"

    def merged(self, other: DisplayNames) -> DisplayNames:
        """These names with ``other``'s overrides on top."""
        return DisplayNames(
            **{kind: {**getattr(self, kind), **getattr(other, kind)} for kind in _KINDS}
        )

    @classmethod
    def from_mapping(
        cls, data: Mapping[str, Any], *, source: str = "display names"
    ) -> DisplayNames:
        """From ``{"tasks": {...}, "systems": {...}, ...}``; unknown kinds are an error."""
        unknown = sorted(set(data) - set(_KINDS))
        if unknown:
            raise ValueError(
                f"{source}: unknown section(s) {unknown}; expected some of {', '.join(_KINDS)}"
            )
        parts: dict[str, dict[str, str]] = {}
        for kind, table in data.items():
            if not isinstance(table, Mapping):
                raise ValueError(f"{source}: [{kind}] must map identifiers to names")
            bad = [k for k, v in table.items() if not isinstance(v, str)]
            if bad:
                raise ValueError(f"{source}: [{kind}] {bad[0]!r} must map to a string")
            parts[kind] = {str(k): v for k, v in table.items()}
        return cls(**parts)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> DisplayNames:
        """Read overrides from a ``.toml``, ``.json`` or ``.yaml``/``.yml`` file."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"display-name file {path} does not exist")
        text = path.read_text(encoding="utf-8")
        suffix = path.suffix.lower()
        try:
            if suffix == ".toml":
                data: Any = tomllib.loads(text)
            elif suffix == ".json":
                data = json.loads(text)
            elif suffix in (".yaml", ".yml"):
                import yaml

                data = yaml.safe_load(text) or {}
            else:
                raise ValueError(f"{path}: expected a .toml, .json or .yaml file")
        except (tomllib.TOMLDecodeError, json.JSONDecodeError) as error:
            raise ValueError(f"{path}: {error}") from error
        if not isinstance(data, Mapping):
            raise ValueError(f"{path}: expected sections {', '.join(_KINDS)}")
        return cls.from_mapping(data, source=str(path))


#: The defaults alone.
DEFAULT_NAMES = DisplayNames()
