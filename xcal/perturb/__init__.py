"""Perturbations for calibration under syntactic and distributional shift, in every script.

Each perturbation is a pure, deterministic function of (text, language,
severity, seed, example_id) registered by name; severity 0 is the identity and
severity 1 affects every unit the perturbation works on (see each one's
``severity_meaning``). Word-level perturbations segment Chinese, Japanese and
Thai into words with ICU (:mod:`xcal.perturb.words`).

>>> from xcal.perturb import get_perturbation, perturbation_names
>>> "word_shuffle" in perturbation_names()
True
>>> p = get_perturbation("remove_diacritics")
>>> p("Ça va très bien", language="fr", severity=1.0, seed=0, example_id="x")
'Ca va tres bien'
"""

from __future__ import annotations

# Importing the modules registers their perturbations.
from xcal.perturb import noise, syntactic  # noqa: F401
from xcal.perturb.apply import (
    PerturbedExamples,
    apply_to_example,
    apply_to_examples,
    get_perturbation,
    manifest_fields,
    perturb_context,
    perturbation_names,
    text_fields_of,
)
from xcal.perturb.base import ALGORITHM_VERSION, PERTURBATIONS, Perturbation, make_stream
from xcal.perturb.noise import load_lexicon
from xcal.perturb.syntactic import function_words
from xcal.perturb.words import Piece, segment, segmenter_name, words

__all__ = [
    "ALGORITHM_VERSION",
    "PERTURBATIONS",
    "Perturbation",
    "PerturbedExamples",
    "Piece",
    "apply_to_example",
    "apply_to_examples",
    "function_words",
    "get_perturbation",
    "load_lexicon",
    "make_stream",
    "manifest_fields",
    "perturb_context",
    "perturbation_names",
    "segment",
    "segmenter_name",
    "text_fields_of",
    "words",
]
