"""Input checks shared by the metric functions.

Public metric functions validate once, at the boundary, and then call unchecked
cores. Every message says what was expected, what arrived and where (which
argument, which row), so a researcher can find the bad prediction in a file of
millions.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import numpy.typing as npt

Binning = Literal["width", "mass"]
Norm = Literal["l1", "l2", "max"]
ScoreKind = Literal["prob", "logits"]

BINNINGS: tuple[str, ...] = ("width", "mass")
NORMS: tuple[str, ...] = ("l1", "l2", "max")


def check_n_bins(n_bins: Any) -> int:
    """``n_bins`` must be a positive int (bools are refused)."""
    if isinstance(n_bins, bool) or not isinstance(n_bins, int | np.integer) or n_bins < 1:
        raise ValueError(f"Expected `n_bins` to be a positive int, got {n_bins!r}")
    return int(n_bins)


def check_choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f"Expected `{name}` to be one of {list(choices)}, got {value!r}")
    return str(value)


def _first_bad_row(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def check_float_array(x: Any, name: str, ndim: int) -> np.ndarray:
    """A float32/float64 array of the given rank (other real dtypes become float64)."""
    arr = np.asarray(x)
    if arr.ndim != ndim:
        shape = "(n_samples,)" if ndim == 1 else "(n_samples, n_classes)"
        raise ValueError(f"Expected `{name}` of shape {shape}, got an array of shape {arr.shape}")
    if arr.dtype.kind == "b" or arr.dtype.kind not in "iuf":
        raise TypeError(f"Expected `{name}` to hold real numbers, got dtype {arr.dtype}")
    if arr.dtype not in (np.float32, np.float64):
        arr = arr.astype(np.float64)
    if arr.shape[0] == 0:
        raise ValueError(f"`{name}` is empty: at least one sample is needed")
    if ndim == 2 and arr.shape[1] == 0:
        raise ValueError(f"`{name}` has no columns: at least one class is needed")
    return arr


def check_finite(x: np.ndarray, name: str) -> None:
    if not np.isfinite(x).all():
        bad = ~np.isfinite(x)
        where = np.argwhere(bad)[0]
        raise ValueError(
            f"`{name}` must be finite; found {x[tuple(where)].item()!r} at index {tuple(int(i) for i in where)}"
        )


def check_unit_interval(x: np.ndarray, name: str) -> None:
    """All values finite and in [0, 1] (NaN fails both comparisons)."""
    lo, hi = x.min(), x.max()
    if lo >= 0 and hi <= 1:
        return
    bad = ~((x >= 0) & (x <= 1))
    where = np.argwhere(bad)[0]
    raise ValueError(
        f"Expected `{name}` to hold probabilities in [0, 1]; found {x[tuple(where)].item()!r} at index "
        f"{tuple(int(i) for i in where)}"
        + (" (did you mean to pass `logits=`?)" if name == "y_prob" else "")
    )


def row_sum_tolerance(dtype: np.dtype) -> float:
    # The tolerance scikit-learn uses in log_loss: sqrt(machine epsilon) of the input dtype.
    return float(np.sqrt(np.finfo(dtype).eps))


def raise_bad_row_sum(y_prob: np.ndarray, offset: int, sums: np.ndarray, tol: float) -> None:
    bad = ~(np.abs(sums - 1) <= tol)
    row = _first_bad_row(bad)
    raise ValueError(
        f"Expected each row of `y_prob` to sum to 1 (within {tol:.1e}); row {offset + row} sums "
        f"to {float(sums[row])!r}. Pass raw scores as `logits=` instead."
    )


def check_probabilities(y_prob: Any) -> np.ndarray:
    """A (n, K) array of probabilities whose rows sum to 1."""
    arr = check_float_array(y_prob, "y_prob", 2)
    check_unit_interval(arr, "y_prob")
    sums = arr.sum(axis=1)
    tol = row_sum_tolerance(arr.dtype)
    if not (np.abs(sums - 1) <= tol).all():
        raise_bad_row_sum(arr, 0, sums, tol)
    return arr


def check_logits(logits: Any) -> np.ndarray:
    arr = check_float_array(logits, "logits", 2)
    check_finite(arr, "logits")
    return arr


def check_scores(
    y_prob: Any, logits: Any, *, validate_values: bool = True
) -> tuple[ScoreKind, np.ndarray]:
    """Exactly one of ``y_prob`` / ``logits``; never guess which one an array is.

    With ``validate_values=False`` only the shape and dtype are checked here and the
    caller promises to check the values itself (the chunked top-label pass does
    this in the same sweep that computes the metric).
    """
    if (y_prob is None) == (logits is None):
        raise ValueError(
            "Pass exactly one of `y_prob=` (probabilities, rows sum to 1) or `logits=` "
            "(unnormalised scores); got " + ("both" if y_prob is not None else "neither")
        )
    if y_prob is not None:
        if validate_values:
            return "prob", check_probabilities(y_prob)
        return "prob", check_float_array(y_prob, "y_prob", 2)
    if validate_values:
        return "logits", check_logits(logits)
    return "logits", check_float_array(logits, "logits", 2)


def check_y_true(y_true: Any, n_samples: int, n_classes: int | None) -> np.ndarray:
    """Integer class indices in ``[0, n_classes)``, one per sample.

    Class names are never inferred: labels must already be the column indices of
    ``y_prob`` / ``logits``.
    """
    arr = np.asarray(y_true)
    if arr.ndim != 1:
        raise ValueError(f"Expected `y_true` of shape (n_samples,), got shape {arr.shape}")
    if arr.dtype.kind not in "iu":
        raise TypeError(
            f"Expected `y_true` to hold integer class indices, got dtype {arr.dtype}"
            + (
                " (convert with .astype(int) if the values are whole numbers)"
                if arr.dtype.kind == "f"
                else ""
            )
        )
    if arr.shape[0] != n_samples:
        raise ValueError(
            f"`y_true` has {arr.shape[0]} samples but the predictions have {n_samples}"
        )
    if n_samples and n_classes is not None:
        lo, hi = arr.min(), arr.max()
        if lo < 0 or hi >= n_classes:
            bad = _first_bad_row((arr < 0) | (arr >= n_classes))
            raise ValueError(
                f"`y_true` row {bad} is {int(arr[bad])}, expected a class index in [0, {n_classes})"
            )
    return arr


def check_confidence_correct(
    confidence: Any, correct: Any, sample_weight: Any = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Top-label pairs: confidence in [0, 1] and 0/1 correctness, equal length."""
    conf = check_float_array(confidence, "confidence", 1)
    check_unit_interval(conf, "confidence")
    corr = np.asarray(correct)
    if corr.ndim != 1:
        raise ValueError(f"Expected `correct` of shape (n_samples,), got shape {corr.shape}")
    if corr.shape[0] != conf.shape[0]:
        raise ValueError(
            f"`correct` has {corr.shape[0]} samples but `confidence` has {conf.shape[0]}"
        )
    if corr.dtype.kind != "b":
        if corr.dtype.kind not in "iuf":
            raise TypeError(f"Expected `correct` to be bool or 0/1, got dtype {corr.dtype}")
        bad = (corr != 0) & (corr != 1)
        if bad.any():
            row = _first_bad_row(bad)
            raise ValueError(f"Expected `correct` to be 0 or 1; row {row} is {corr[row].item()!r}")
        corr = corr.astype(bool)
    weight = None if sample_weight is None else check_sample_weight(sample_weight, conf.shape[0])
    return conf, corr, weight


def check_sample_weight(sample_weight: Any, n_samples: int) -> np.ndarray:
    w = np.asarray(sample_weight)
    if w.shape != (n_samples,):
        raise ValueError(f"Expected `sample_weight` of shape ({n_samples},), got shape {w.shape}")
    if w.dtype.kind not in "iuf" or w.dtype.kind == "b":
        raise TypeError(f"Expected `sample_weight` to hold real numbers, got dtype {w.dtype}")
    if not (np.isfinite(w).all() and (w >= 0).all()):
        row = _first_bad_row(~(np.isfinite(w) & (w >= 0)))
        raise ValueError(f"`sample_weight` must be finite and >= 0; row {row} is {w[row].item()!r}")
    if not w.sum() > 0:
        raise ValueError("`sample_weight` sums to 0: at least one sample needs positive weight")
    return w


def as_float(x: npt.ArrayLike) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)
