"""The perturbation contract, its random numbers and the registry.

A perturbation is a pure function of (text, language, severity, seed,
example_id): the same five inputs give the same output on every machine and in
every process. Three rules make that true:

- The random stream is seeded from a BLAKE2b digest of the perturbation's
  name, the seed and the example id (never Python's ``hash()``, which is
  salted per process), and only ``random.Random.random()`` is drawn from it:
  Python guarantees that method's sequence for a given integer seed across
  versions, which it does not promise for ``shuffle``/``choice``/``randrange``
  (nor does numpy's ``Generator`` across numpy versions).
- Severity is *not* part of the seed. Each unit (word, character, boundary)
  draws the same numbers at every severity and is affected when its first
  draw is below the severity, so the units affected at severity 0.2 are a
  subset of those affected at 0.4 (common random numbers): a severity sweep
  changes one thing at a time instead of redrawing everything.
- Severity 0 returns the text unchanged, and a perturbation never returns an
  empty or whitespace-only text (such a result falls back to the input).
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import repeat, starmap
from typing import Any, ClassVar, TypeVar

from xcal.perturb._lang import base_language
from xcal.perturb.words import segmenter_name
from xcal.registry import Registry

# Bump when an algorithm changes its output for the same inputs, so stored runs
# made with the old algorithm are not reused (it is part of the manifest params).
ALGORITHM_VERSION = 1

P = TypeVar("P", bound="Perturbation")


class Stream:
    """The deterministic random stream of one (perturbation, seed, example).

    Only ``random.Random.random()`` is used underneath (see module docstring);
    integers and permutations are built from it here.
    """

    __slots__ = ("_random",)

    def __init__(self, *parts: object) -> None:
        key = "\x1f".join(str(p) for p in parts).encode("utf-8")
        digest = hashlib.blake2b(key, digest_size=16).digest()
        self._random = random.Random(int.from_bytes(digest, "big"))

    def uniform(self) -> float:
        """A float in [0, 1)."""
        return self._random.random()

    def uniforms(self, n: int) -> list[float]:
        """``n`` floats in [0, 1), in stream order."""
        # starmap calls random() from C: several times faster than a comprehension.
        return list(starmap(self._random.random, repeat((), n)))

    @staticmethod
    def index(u: float, n: int) -> int:
        """Map a uniform ``u`` to an index in ``range(n)``."""
        return min(int(u * n), n - 1)


def make_stream(name: str, seed: int, example_id: object) -> Stream:
    """The stream for perturbation ``name`` under ``seed`` for one example.

    >>> make_stream("x", 0, "a").uniform() == make_stream("x", 0, "a").uniform()
    True
    >>> make_stream("x", 0, "a").uniform() == make_stream("x", 1, "a").uniform()
    False
    """
    return Stream("xcal.perturb", name, int(seed), example_id)


def check_severity(severity: object) -> float:
    """Validate a severity: a real number in [0, 1]."""
    if isinstance(severity, bool) or not isinstance(severity, int | float):
        raise TypeError(f"Expected `severity` to be a number in [0, 1], got {severity!r}")
    value = float(severity)
    if math.isnan(value) or not 0.0 <= value <= 1.0:
        raise ValueError(f"Expected `severity` in [0, 1], got {severity!r}")
    return value


def check_seed(seed: object) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"Expected `seed` to be an int, got {seed!r}")
    return seed


@dataclass(frozen=True)
class Perturbation:
    """Base class: subclasses are frozen dataclasses whose fields are parameters.

    Call an instance as ``p(text, language=..., severity=..., seed=..., example_id=...)``.
    Subclasses implement :meth:`_perturb`; this class validates inputs, handles
    severity 0, seeds the stream and guards against empty output.

    Attributes
    ----------
    name : str
        Registry name; part of the random seed.
    kind : ClassVar[str]
        ``"syntactic"`` (word order and function words) or ``"noise"``
        (distributional shift at the character or word level).
    severity_meaning : ClassVar[str]
        What severity is a fraction of (one line; shown in the README table and the CLI).
    keeps_script : ClassVar[bool]
        False when the output may use another script (transliteration, code-switching).
    """

    name: str
    kind: ClassVar[str] = ""
    severity_meaning: ClassVar[str] = ""
    keeps_script: ClassVar[bool] = True
    uses_segmenter: ClassVar[bool] = True

    def __call__(
        self,
        text: str,
        *,
        language: str,
        severity: float,
        seed: int = 0,
        example_id: object = "",
    ) -> str:
        if not isinstance(text, str):
            raise TypeError(f"Expected `text` to be a str, got {type(text).__name__}")
        level = check_severity(severity)
        check_seed(seed)
        base_language(language)  # validates the code
        if level == 0.0 or not text.strip():
            return text
        stream = make_stream(self.name, seed, example_id)
        out = self._perturb(text, language, level, stream)
        # Empty output is never useful to a model and breaks readers downstream.
        return out if out.strip() else text

    def _perturb(self, text: str, language: str, severity: float, stream: Stream) -> str:
        raise NotImplementedError

    @property
    def params(self) -> dict[str, Any]:
        """The perturbation's parameters (JSON-serialisable), without name or language."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            if f.name == "name":
                continue
            value = getattr(self, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    def manifest_params(self, language: str) -> dict[str, Any]:
        """Everything that decides the output for ``language``: goes into ``RunManifest``.

        Adds the segmenter (and its ICU version) and the algorithm version to
        :attr:`params`.
        """
        out = dict(self.params)
        out["algorithm_version"] = ALGORITHM_VERSION
        if self.uses_segmenter:
            out["segmenter"] = segmenter_name(language)
        return out

    def with_params(self: P, **params: Any) -> P:
        """A copy with some parameters changed (unknown names are an error).

        >>> from xcal.perturb import get_perturbation
        >>> get_perturbation("word_shuffle").with_params(window=5).params["window"]
        5
        """
        known = {f.name for f in dataclasses.fields(self)} - {"name"}
        unknown = sorted(set(params) - known)
        if unknown:
            raise ValueError(
                f"unknown parameter(s) {unknown} for perturbation {self.name!r}; "
                f"known: {sorted(known)}"
            )
        return dataclasses.replace(self, **params)

    def __post_init__(self) -> None:
        self._validate()

    def _validate(self) -> None:
        """Check parameter values (subclasses override)."""


PERTURBATIONS: Registry[Perturbation] = Registry("perturbation")


def register(perturbation: P) -> P:
    """Add a configured perturbation to the registry under its name."""
    PERTURBATIONS.add(perturbation.name, perturbation)
    return perturbation


def check_positive_int(name: str, value: object, minimum: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"Expected `{name}` to be an int >= {minimum}, got {value!r}")


def check_choices(name: str, values: Sequence[str], allowed: Sequence[str]) -> None:
    if not values or any(v not in allowed for v in values):
        raise ValueError(
            f"Expected `{name}` to be a non-empty subset of {list(allowed)}, got {values!r}"
        )
