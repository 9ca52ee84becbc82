"""One pass over a score matrix: validate, take the top label, compare with the truth.

Why chunked: ``np.argmax(y_prob, axis=1)`` on a (10M, 3) array spends its time
in per-row overhead, and ``max`` plus ``argmax`` plus a row-sum check are three
such passes. Walking the rows in blocks that fit in cache and using column-wise
ufuncs (``np.maximum`` / ``np.greater`` chains for a few classes) computes the
range check, the row-sum check, the confidence, the predicted class and the
correctness while the block is still in cache, in about the time of a single
``argmax``. Ties go to the lowest class index, exactly as ``np.argmax``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from xcal.metrics._validation import ScoreKind, raise_bad_row_sum, row_sum_tolerance

# Rows per block: 64K rows of 3 float64 columns is 1.5 MB, in L2/L3 on common CPUs.
CHUNK_ROWS = 1 << 16
# Up to this many classes a column-wise chain beats argmax over a short inner axis.
CHAIN_MAX_CLASSES = 16


@dataclass
class TopLabelChunk:
    """Views into reused buffers: copy anything you keep past the next iteration."""

    start: int
    confidence: np.ndarray  # (m,), dtype of the scores
    predicted: np.ndarray  # (m,), int8 (chain) or intp
    correct: np.ndarray | None  # (m,) bool, when y_true was given


def _check_prob_block(block: np.ndarray, start: int, rowsum: np.ndarray, tol: float) -> None:
    lo, hi = block.min(), block.max()
    if not (lo >= 0 and hi <= 1):
        bad = np.argwhere(~((block >= 0) & (block <= 1)))[0]
        raise ValueError(
            f"Expected `y_prob` to hold probabilities in [0, 1]; found "
            f"{block[tuple(bad)].item()!r} at index ({start + int(bad[0])}, {int(bad[1])}) "
            "(did you mean to pass `logits=`?)"
        )
    if not (rowsum.min() >= 1 - tol and rowsum.max() <= 1 + tol):
        raise_bad_row_sum(block, start, rowsum, tol)


def _check_logit_block(block: np.ndarray, start: int) -> None:
    if not (np.isfinite(block.min()) and np.isfinite(block.max())):
        bad = np.argwhere(~np.isfinite(block))[0]
        raise ValueError(
            f"`logits` must be finite; found {block[tuple(bad)].item()!r} at index "
            f"({start + int(bad[0])}, {int(bad[1])})"
        )


def iter_top_label(
    scores: np.ndarray,
    kind: ScoreKind,
    y_true: np.ndarray | None = None,
    *,
    validate: bool = True,
    chunk_rows: int | None = None,
) -> Iterator[TopLabelChunk]:
    """Yield (confidence, predicted, correct) block by block.

    For ``kind="prob"`` the confidence is the largest probability; for
    ``kind="logits"`` it is the softmax probability of the largest logit,
    ``1 / sum_j exp(z_j - max_j z_j)``, computed without forming the softmax.
    With ``validate`` each block is checked (range and row sums for
    probabilities, finiteness for logits) before it is used.
    """
    n, k = scores.shape
    dt = scores.dtype
    if chunk_rows is None:
        chunk_rows = CHUNK_ROWS  # read at call time so tests can shrink it
    m = min(chunk_rows, n)
    conf_buf = np.empty(m, dtype=dt)
    tmp_buf = np.empty(m, dtype=dt)
    total_buf = np.empty(m, dtype=dt)
    flag_buf = np.empty(m, dtype=bool)
    correct_buf = np.empty(m, dtype=bool)
    chain = k <= CHAIN_MAX_CLASSES
    pred_buf = np.empty(m, dtype=np.int8 if chain else np.intp)
    tol = row_sum_tolerance(dt)
    for start in range(0, n, chunk_rows):
        block = scores[start : start + chunk_rows]
        rows = block.shape[0]
        conf, tmp, flag, pred = conf_buf[:rows], tmp_buf[:rows], flag_buf[:rows], pred_buf[:rows]
        if chain:
            if validate and kind == "prob":
                if k == 1:
                    tmp[:] = block[:, 0]
                else:
                    np.add(block[:, 0], block[:, 1], out=tmp)
                    for j in range(2, k):
                        np.add(tmp, block[:, j], out=tmp)
                _check_prob_block(block, start, tmp, tol)
            elif validate:
                _check_logit_block(block, start)
            conf[:] = block[:, 0]
            pred[:] = 0
            for j in range(1, k):
                col = block[:, j]
                # strict ">" keeps the earlier class on ties, as np.argmax does
                np.greater(col, conf, out=flag)
                np.copyto(pred, j, where=flag)
                np.maximum(conf, col, out=conf)
            if kind == "logits":
                # softmax probability of the top class: 1 / sum_j exp(z_j - max)
                total = total_buf[:rows]
                total[:] = 0
                for j in range(k):
                    np.subtract(block[:, j], conf, out=tmp)
                    np.exp(tmp, out=tmp)
                    np.add(total, tmp, out=total)
                np.divide(1, total, out=conf)
        else:
            if validate and kind == "prob":
                _check_prob_block(block, start, block.sum(axis=1), tol)
            elif validate:
                _check_logit_block(block, start)
            pred[:] = np.argmax(block, axis=1)
            top = np.take_along_axis(block, pred[:, None].astype(np.intp), axis=1)[:, 0]
            if kind == "prob":
                conf[:] = top
            else:
                conf[:] = 1.0 / np.exp(block - top[:, None]).sum(axis=1)
        correct = None
        if y_true is not None:
            correct = correct_buf[:rows]
            np.equal(pred, y_true[start : start + rows], out=correct)
        yield TopLabelChunk(start, conf, pred, correct)


def top_label_arrays(
    scores: np.ndarray,
    kind: ScoreKind,
    y_true: np.ndarray | None = None,
    *,
    validate: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Whole-array confidence (scores dtype), predicted class (intp), correct (bool)."""
    n = scores.shape[0]
    conf = np.empty(n, dtype=scores.dtype)
    pred = np.empty(n, dtype=np.intp)
    correct = np.empty(n, dtype=bool) if y_true is not None else None
    for chunk in iter_top_label(scores, kind, y_true, validate=validate):
        stop = chunk.start + chunk.confidence.shape[0]
        conf[chunk.start : stop] = chunk.confidence
        pred[chunk.start : stop] = chunk.predicted
        if correct is not None and chunk.correct is not None:
            correct[chunk.start : stop] = chunk.correct
    return conf, pred, correct
