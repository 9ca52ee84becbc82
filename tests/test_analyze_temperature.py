"""Temperature fits of the analysis: the notes tie to each fitter's own range (xcal.analyze._adapters)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from xcal.analyze import _adapters
from xcal.analyze.synthetic import SyntheticSystem, make_synthetic_store


def _two_candidates(gap: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Scores (n, 2): the top candidate at 0, the other ``gap`` below it."""
    return np.column_stack([np.zeros(gap.shape[0]), -gap]), np.zeros(gap.shape[0], dtype=np.intp)


def _exact_nll(gap: np.ndarray, correct: np.ndarray, t: float) -> float:
    # two candidates: p = 1 / (1 + exp(-gap / T)), so -log p = softplus(-gap / T)
    # and -log(1 - p) = softplus(gap / T), exact for any T
    return float(np.mean(np.where(correct, np.logaddexp(0, -gap / t), np.logaddexp(0, gap / t))))


def _retrieval_like(scale: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    n = 400
    correct = rng.random(n) < 0.97
    gap = np.where(correct, rng.uniform(0.05, 0.3, n), rng.uniform(0.2, 0.4, n))
    return scale * gap, correct


def test_top1_fit_is_the_minimum_of_the_exact_nll() -> None:
    gap, correct = _retrieval_like(1.0)
    scores, top = _two_candidates(gap)
    fit = _adapters.fit_top1_temperature(scores, top, correct)
    grid = np.linspace(-7.0, 7.0, 28_001)
    best = math.exp(grid[np.argmin([_exact_nll(gap, correct, math.exp(g)) for g in grid])])
    assert fit.temperature == pytest.approx(best, rel=2e-3)
    for t in (0.01, 0.5, 3.0):
        assert _adapters.top1_nll(scores, top, correct, t) == pytest.approx(
            _exact_nll(gap, correct, t), rel=1e-12
        )


def test_no_clipping_plateau_near_zero() -> None:
    # With p clipped at 1 - 1e-12 every wrong example cost log(1e12) once gap / T
    # passed 27.6, whatever T: the loss was flat toward T = 0. It must keep rising.
    gap, correct = _retrieval_like(1.0)
    scores, top = _two_candidates(gap)
    losses = [_adapters.top1_nll(scores, top, correct, t) for t in (1e-3, 3e-3, 1e-2)]
    assert losses[0] > losses[1] > losses[2]
    assert losses[0] == pytest.approx(_exact_nll(gap, correct, 1e-3), rel=1e-12)


def test_interior_optimum_below_the_classifier_range_is_not_flagged() -> None:
    # The pipeline used the classifier's range (0.0101, 99) for every fit; the
    # retrieval fitter searches log T in [-7, 7], so T = 0.004 is an interior optimum.
    gap, correct = _retrieval_like(0.05)
    fit = _adapters.fit_top1_temperature(*_two_candidates(gap), correct)
    assert fit.temperature < 0.0101
    assert not fit.at_bound and fit.note() is None
    assert fit.bounds == pytest.approx((math.exp(-7.0), math.exp(7.0)))


def test_every_fitting_example_correct_is_said_so() -> None:
    gap = np.random.default_rng(1).uniform(0.1, 1.0, 50)
    fit = _adapters.fit_top1_temperature(*_two_candidates(gap), np.ones(50, dtype=bool))
    assert fit.all_correct and fit.at_bound
    assert fit.temperature == pytest.approx(math.exp(-7.0))  # the end point itself
    assert "every fitting example is correct" in (fit.note() or "")
    logits = np.array([[3.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 1.0]] * 10)
    cls = _adapters.fit_temperature(logits, np.tile([0, 1, 2], 10))
    assert cls.all_correct and "every fitting example is correct" in (cls.note() or "")


def test_end_of_range_is_flagged_with_the_fitters_own_range() -> None:
    # Half right at one gap: the NLL falls as T grows (p -> 1/2), so the fit
    # ends at the upper end point, which Brent's search alone never evaluates.
    gap = np.full(200, 0.7)
    correct = np.arange(200) % 2 == 0
    fit = _adapters.fit_top1_temperature(*_two_candidates(gap), correct)
    assert fit.temperature == math.exp(7.0)
    assert "end of the search range [0.000912, 1.1e+03]" in (fit.note() or "")
    rows = np.arange(297)  # 99 blocks of 3: exactly a third right
    logits = np.zeros((297, 3))
    logits[rows, rows % 3] = 1.0
    flat = _adapters.fit_temperature(logits, (rows + rows // 3) % 3)
    assert flat.at_bound and "[0.01, 100]" in (flat.note() or "")


def test_pipeline_notes_come_from_the_fit(tmp_path) -> None:
    from xcal.analyze import analyze_store

    store = make_synthetic_store(
        tmp_path / "s",
        systems=(SyntheticSystem("baseline"),),
        languages=("en", "de"),
        n_examples=200,
        separation=lambda lang, p, s: 25.0,  # every example right
    )
    res = analyze_store(store, baseline="baseline", n_boot=0, metrics=["ece"], cache=False)
    notes = [n for n in res.notes if "every fitting example is correct" in n]
    assert len(notes) == 2, res.notes
    assert not any("end of the search range" in n for n in res.notes)
