"""batched_calibration_error must equal the unbatched estimator row by row."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xcal.metrics import top_label_calibration_error
from xcal.metrics._validation import Binning, Norm
from xcal.metrics.batched import batched_calibration_error

SETTINGS: list[tuple[Binning, Norm, bool]] = [
    ("width", "l1", False),
    ("width", "l2", False),
    ("width", "max", False),
    ("width", "l2", True),
    ("mass", "l1", False),
    ("mass", "l2", False),
    ("mass", "max", False),
    ("mass", "l2", True),
]


def _data(
    rng: np.random.Generator, n: int, discrete: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    if discrete:
        # few distinct values: many ties, exercising tie groups at equal-mass edges
        conf = rng.choice(np.array([0.0, 0.25, 0.5, 0.6, 0.75, 1.0]), size=n)
    else:
        conf = rng.beta(5, 2, size=n)
    correct = rng.uniform(size=n) < conf
    return conf, correct


@pytest.mark.parametrize(("binning", "norm", "debias"), SETTINGS)
@pytest.mark.parametrize("discrete", [False, True])
def test_indices_rows_equal_unbatched(
    binning: Binning, norm: Norm, debias: bool, discrete: bool
) -> None:
    rng = np.random.default_rng(1)
    conf, correct = _data(rng, 300, discrete)
    indices = rng.integers(0, 300, size=(40, 300))
    got = batched_calibration_error(
        conf, correct, indices=indices, n_bins=10, binning=binning, norm=norm, debias=debias
    )
    want = [
        top_label_calibration_error(
            conf[row], correct[row], n_bins=10, binning=binning, norm=norm, debias=debias
        )
        for row in indices
    ]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


@pytest.mark.parametrize(("binning", "norm", "debias"), SETTINGS)
@pytest.mark.parametrize("discrete", [False, True])
def test_weight_rows_equal_unbatched(
    binning: Binning, norm: Norm, debias: bool, discrete: bool
) -> None:
    rng = np.random.default_rng(2)
    conf, correct = _data(rng, 250, discrete)
    weights = rng.exponential(size=(30, 250))  # Bayesian-bootstrap style, real-valued
    weights[:, :10] = 0.0  # zero weights must not move equal-mass edges
    got = batched_calibration_error(
        conf, correct, weights=weights, n_bins=7, binning=binning, norm=norm, debias=debias
    )
    want = [
        top_label_calibration_error(
            conf, correct, n_bins=7, binning=binning, norm=norm, debias=debias, sample_weight=w
        )
        for w in weights
    ]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


@pytest.mark.parametrize("binning", ["width", "mass"])
def test_integer_weights_equal_repeated_samples(binning: Binning) -> None:
    # Poisson-bootstrap counts as weights == the resample written out as indices.
    rng = np.random.default_rng(3)
    conf, correct = _data(rng, 200, discrete=True)
    counts = rng.poisson(1.0, size=(25, 200))
    counts[:, 0] += 1  # no empty resample
    by_weight = batched_calibration_error(conf, correct, weights=counts, binning=binning)
    by_repeat = [
        top_label_calibration_error(
            conf[np.repeat(np.arange(200), c)],
            correct[np.repeat(np.arange(200), c)],
            binning=binning,
        )
        for c in counts
    ]
    np.testing.assert_allclose(by_weight, by_repeat, rtol=0, atol=1e-12)


def test_indices_may_have_other_length_and_many_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    import xcal.metrics.batched as batched

    monkeypatch.setattr(batched, "_BLOCK_ELEMENTS", 100)  # force several row blocks
    rng = np.random.default_rng(4)
    conf, correct = _data(rng, 50)
    indices = rng.integers(0, 50, size=(17, 30))
    binnings: tuple[Binning, ...] = ("width", "mass")
    for binning in binnings:
        got = batched_calibration_error(conf, correct, indices=indices, binning=binning, n_bins=5)
        want = [
            top_label_calibration_error(conf[r], correct[r], binning=binning, n_bins=5)
            for r in indices
        ]
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


def test_identity_resample_is_the_point_estimate() -> None:
    rng = np.random.default_rng(5)
    conf, correct = _data(rng, 100)
    identity = np.arange(100)[None, :]
    assert batched_calibration_error(conf, correct, indices=identity)[0] == pytest.approx(
        top_label_calibration_error(conf, correct), abs=1e-15
    )
    ones = np.ones((1, 100))
    assert batched_calibration_error(conf, correct, weights=ones)[0] == pytest.approx(
        top_label_calibration_error(conf, correct), abs=1e-15
    )


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 40),
    n_resamples=st.integers(1, 6),
    n_bins=st.integers(1, 12),
    binning=st.sampled_from(["width", "mass"]),
    norm=st.sampled_from(["l1", "l2", "max"]),
)
def test_property_rows_equal_unbatched(
    seed: int, n: int, n_resamples: int, n_bins: int, binning: Binning, norm: Norm
) -> None:
    rng = np.random.default_rng(seed)
    # rounded confidences: ties, exact 0 and 1
    conf = np.round(rng.uniform(size=n), 1)
    correct = rng.integers(0, 2, size=n).astype(bool)
    indices = rng.integers(0, n, size=(n_resamples, n))
    got = batched_calibration_error(
        conf, correct, indices=indices, n_bins=n_bins, binning=binning, norm=norm
    )
    want = [
        top_label_calibration_error(conf[r], correct[r], n_bins=n_bins, binning=binning, norm=norm)
        for r in indices
    ]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


def test_errors_name_the_argument() -> None:
    conf = np.array([0.5, 0.9])
    correct = np.array([True, False])
    with pytest.raises(ValueError, match="exactly one of `indices=`"):
        batched_calibration_error(conf, correct)
    with pytest.raises(ValueError, match="exactly one of `indices=`"):
        batched_calibration_error(conf, correct, indices=[[0, 1]], weights=[[1, 1]])
    with pytest.raises(ValueError, match=r"`indices\[0, 1\]` is 2"):
        batched_calibration_error(conf, correct, indices=[[0, 2]])
    with pytest.raises(ValueError, match=r"shape \(B, n\)"):
        batched_calibration_error(conf, correct, indices=[0, 1])
    with pytest.raises(ValueError, match="row 1 sums to 0"):
        batched_calibration_error(conf, correct, weights=[[1, 1], [0, 0]])
    with pytest.raises(ValueError, match=r"weights\[0, 0\]"):
        batched_calibration_error(conf, correct, weights=[[-1.0, 1.0]])
    with pytest.raises(ValueError, match="debias"):
        batched_calibration_error(conf, correct, indices=[[0, 1]], debias=True)
