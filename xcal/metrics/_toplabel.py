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
from typing import Any

import numpy as np

from xcal.metrics._validation import (
    ScoreKind,
    check_scores,
    check_y_true,
    raise_bad_row_sum,
    row_sum_tolerance,
)

# Rows per block: 64K rows of 3 float64 columns is 1.5 MB, in L2/L3 on common CPUs.
CHUNK_ROWS = 1 << 16
# Up to this many classes a column-wise chain beats argmax over a short inner axis.
CHAIN_MAX_CLASSES = 16


@dataclass
class TopLabelChunk:
    """Views into reused buffers: copy anything you keep past the next iteration."""

    start: int
    confidence: np.ndarray  # (m,), dtype of the scores
    predicted: np.ndarray  # (m,), the labels' integer dtype (chain) or intp
    correct: np.ndarray | None  # (m,) bool, when y_true was given


def _check_prob_block(
    block: np.ndarray, start: int, rowsum: np.ndarray, top: np.ndarray, tol: float
) -> None:
    # block.min() and the row maxima's max cover every entry (NaN fails both);
    # the error path pays for a second look to name the first bad entry.
    lo, hi = block.min(), top.max()
    if not (lo >= 0 and hi <= 1):
        bad = np.argwhere(~((block >= 0) & (block <= 1)))[0]
        raise ValueError(
            f"Expected `y_prob` to hold probabilities in [0, 1]; found "
            f"{block[tuple(bad)].item()!r} at index ({start + int(bad[0])}, {int(bad[1])}) "
            "(did you mean to pass `logits=`?)"
        )
    if not (rowsum.min() >= 1 - tol and rowsum.max() <= 1 + tol):
        raise_bad_row_sum(block, start, rowsum, tol)


def _check_logit_block(block: np.ndarray, start: int, top: np.ndarray) -> None:
    if not (np.isfinite(block.min()) and np.isfinite(top.max())):
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
    chain = k <= CHAIN_MAX_CLASSES
    # int8 class indices keep the chain's integer work at one byte per row
    pred_dtype = np.dtype(np.int8) if chain else np.dtype(np.intp)
    conf_buf = np.empty(m, dtype=dt)
    rowsum_buf = np.empty(m, dtype=dt)
    tmp_buf = np.empty(m, dtype=dt)
    flag_buf = np.empty(m, dtype=bool)
    correct_buf = np.empty(m, dtype=bool)
    pred_buf = np.empty(m, dtype=pred_dtype)
    step_buf = np.empty(m, dtype=pred_dtype)
    label_buf = np.empty(m, dtype=pred_dtype)
    pred_j = [np.array(j, dtype=pred_dtype) for j in range(k)] if chain else []
    tol = row_sum_tolerance(dt)
    check_sums = validate and kind == "prob"
    for start in range(0, n, chunk_rows):
        block = scores[start : start + chunk_rows]
        rows = block.shape[0]
        conf, flag, pred = conf_buf[:rows], flag_buf[:rows], pred_buf[:rows]
        step = step_buf[:rows]
        rowsum, tmp = rowsum_buf[:rows], tmp_buf[:rows]
        if chain:
            first = block[:, 0]
            if k == 1:
                conf[:] = first
                pred[:] = 0
                if check_sums:
                    rowsum[:] = first
            else:
                second = block[:, 1]
                if check_sums:
                    np.add(first, second, out=rowsum)
                # strict ">" keeps the earlier class on ties, as np.argmax does
                np.greater(second, first, out=flag)
                pred[:] = flag
                np.maximum(first, second, out=conf)
                for j in range(2, k):
                    col = block[:, j]
                    if check_sums:
                        np.add(rowsum, col, out=rowsum)
                    np.greater(col, conf, out=flag)
                    # pred < j so far: max(pred, j * flag) sets j where flag, and is
                    # several times faster than a masked copyto
                    np.multiply(flag, pred_j[j], out=step)
                    np.maximum(pred, step, out=pred)
                    np.maximum(conf, col, out=conf)
        else:
            pred[:] = np.argmax(block, axis=1)
            conf[:] = np.take_along_axis(block, pred[:, None], axis=1)[:, 0]
            if check_sums:
                rowsum[:] = block.sum(axis=1)
        if validate and kind == "prob":
            _check_prob_block(block, start, rowsum, conf, tol)
        elif validate:
            _check_logit_block(block, start, conf)
        if kind == "logits":
            # softmax probability of the top class, 1 / sum_j exp(z_j - max_j z_j),
            # without forming the softmax
            total = rowsum_buf[:rows]
            total[:] = 0
            for j in range(k):
                np.subtract(block[:, j], conf, out=tmp)
                np.exp(tmp, out=tmp)
                np.add(total, tmp, out=total)
            np.divide(1, total, out=conf)
        correct = None
        if y_true is not None:
            correct = correct_buf[:rows]
            labels = y_true[start : start + rows]
            if chain and labels.dtype != np.int8:
                # labels are checked to lie in [0, k), k <= 16: int8 holds them exactly
                label_buf[:rows] = labels
                labels = label_buf[:rows]
            np.equal(pred, labels, out=correct)
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


def checked_top_label(y_true: Any, y_prob: Any, logits: Any) -> tuple[np.ndarray, np.ndarray]:
    """Validate labels and exactly one of ``y_prob`` / ``logits``; return (confidence, correct)."""
    kind, scores = check_scores(y_prob, logits, validate_values=False)
    y = check_y_true(y_true, scores.shape[0], scores.shape[1])
    conf, _, correct = top_label_arrays(scores, kind, y)
    assert correct is not None
    return conf, correct
