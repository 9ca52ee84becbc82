"""Parallel multilingual data for the pooled-estimator simulations (unlike the other generators).

One set of source items is "translated" into every language: an item has one
gold label in all languages (classes drawn 80/15/5), a difficulty shared by
all languages and both systems, and belongs to a premise group (XNLI's three
hypotheses of one premise) whose effect is shared too. Each language shifts
the difficulty by a fixed amount. A system's logits are evidence for the gold
class minus the difficulty, plus noise partly shared with the other system
(they are paired, not exchangeable); its probabilities then go through a
Dirichlet calibration map ``softmax(W log q + b)`` (Kull et al. 2019), which
makes it miscalibrated in a class-dependent way.

The population value of a metric in a language is its value on a very large
draw of items for that language (``population``), the quantity a per-language
interval should cover.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from xcal.metrics import softmax
from xcal.metrics._binning import error_from_statistics

CLASS_PROBS = (0.80, 0.15, 0.05)


@dataclass(frozen=True)
class DirichletSystem:
    """A system: evidence strength, Dirichlet map ``(W, b)`` and extra temperature."""

    strength: float = 2.5
    W: tuple[tuple[float, ...], ...] = ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0))
    b: tuple[float, ...] = (0.0, 0.0, 0.0)
    temperature: float = 1.0


@dataclass(frozen=True)
class ParallelDesign:
    n_languages: int = 14
    group_size: int = 3
    item_sd: float = 0.8
    group_sd: float = 0.6
    noise_sd: float = 0.9
    shared_noise: float = 0.6  # correlation of the two systems' noise on an example
    language_shift: tuple[float, ...] = field(
        default_factory=lambda: tuple(np.linspace(-1.2, 0.3, 14).round(3))
    )


def draw(
    rng: np.random.Generator,
    design: ParallelDesign,
    systems: tuple[DirichletSystem, ...],
    n_groups: int,
) -> dict[str, np.ndarray]:
    """Probabilities ``probs[s, l] (n, C)``, labels ``y (n,)``, items and groups ``(n,)``.

    Vectorised over languages and systems; ``n = n_groups * group_size``.
    """
    n = n_groups * design.group_size
    n_lang = design.n_languages
    group = np.repeat(np.arange(n_groups), design.group_size)
    y = rng.choice(len(CLASS_PROBS), size=n, p=CLASS_PROBS)
    difficulty = (
        design.item_sd * rng.normal(size=n) + design.group_sd * rng.normal(size=n_groups)[group]
    )
    shift = np.asarray(design.language_shift[:n_lang])[:, None]
    n_classes = len(CLASS_PROBS)
    shared = rng.normal(size=(n_lang, n, n_classes))
    rho = design.shared_noise
    log_prior = np.log(CLASS_PROBS)
    out = np.empty((len(systems), n_lang, n, n_classes))
    onehot = np.eye(n_classes)[y]
    for s, system in enumerate(systems):
        own = rng.normal(size=(n_lang, n, n_classes))
        noise = design.noise_sd * (np.sqrt(rho) * shared + np.sqrt(1 - rho) * own)
        margin = system.strength + shift - difficulty[None, :]
        z = margin[:, :, None] * onehot[None] + noise + log_prior
        log_q = np.log(softmax(z, axis=2))
        mapped = log_q @ np.asarray(system.W).T + np.asarray(system.b)
        out[s] = softmax(mapped / system.temperature, axis=2)
    return {"probs": out, "y": y, "item": np.arange(n), "group": group}


def top_label(probs: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Confidence and correctness along the last axis, for any leading axes."""
    return probs.max(axis=-1), probs.argmax(axis=-1) == y


def population(
    design: ParallelDesign,
    systems: tuple[DirichletSystem, ...],
    *,
    n_groups: int = 20_000,
    n_bins: int = 15,
    seed: int = 12345,
) -> dict[str, np.ndarray]:
    """Per system x language: accuracy, Brier, ECE and the binned L2 calibration error.

    On ``n_groups * group_size`` items per language: the sampling error of
    these "population" values is far below the intervals they are compared
    with (about 0.002 for the L2 error, whose bins hold thousands of items).
    """
    data = draw(np.random.default_rng(seed), design, systems, n_groups)
    return metrics_of(data["probs"], data["y"], n_bins)


def metrics_of(probs: np.ndarray, y: np.ndarray, n_bins: int = 15) -> dict[str, np.ndarray]:
    """Accuracy, Brier, ECE and (debiased) binned L2 error over the last-but-one axis (examples)."""
    conf, correct = top_label(probs, y)
    brier = ((probs - np.eye(probs.shape[-1])[y]) ** 2).sum(axis=-1).mean(axis=-1)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    ids = np.clip(np.searchsorted(edges, conf, side="right") - 1, 0, n_bins - 1)
    lead = conf.shape[:-1]
    cells = int(np.prod(lead))
    flat = (ids.reshape(cells, -1) + n_bins * np.arange(cells)[:, None]).ravel()

    def per_bin(values: np.ndarray) -> np.ndarray:
        sums = np.bincount(flat, weights=values.ravel(), minlength=cells * n_bins)
        return sums.reshape((*lead, n_bins))

    count = per_bin(np.ones_like(conf))
    conf_sum = per_bin(conf)
    corr_sum = per_bin(correct.astype(np.float64))
    return {
        "accuracy": correct.mean(axis=-1),
        "brier": brier,
        "ece": error_from_statistics(count, conf_sum, corr_sum, "l1"),
        # the debiased form: at this size the plug-in's upward bias (about
        # n_bins * acc (1 - acc) / n in the square) would shift the truth itself
        "l2": error_from_statistics(count, conf_sum, corr_sum, "l2", True),
    }
