"""Calibration and accuracy metrics: pure numpy, arrays in, numbers out.

Classification metrics take ``y_true`` (class indices) and exactly one of
``y_prob=`` or ``logits=``. The ``top_label_*`` functions take precomputed
``(confidence, correct)`` pairs and serve every task (QA spans, retrieval) and
the bootstrap; :mod:`xcal.metrics.batched` evaluates many resamples at once.
"""

from xcal.metrics.calibration import (
    CalibrationErrorParts,
    ReliabilityTable,
    calibration_error_parts,
    classwise_calibration_error,
    debiased_calibration_error,
    expected_calibration_error,
    max_calibration_error,
    reliability_table,
    rms_calibration_error,
    top_label_calibration_error,
    top_label_calibration_error_parts,
    top_label_reliability_table,
)
from xcal.metrics.classification import (
    accuracy_score,
    brier_score_loss,
    log_softmax,
    nll_loss,
    softmax,
    top_label,
)

__all__ = [
    "CalibrationErrorParts",
    "ReliabilityTable",
    "accuracy_score",
    "brier_score_loss",
    "calibration_error_parts",
    "classwise_calibration_error",
    "debiased_calibration_error",
    "expected_calibration_error",
    "log_softmax",
    "max_calibration_error",
    "nll_loss",
    "reliability_table",
    "rms_calibration_error",
    "softmax",
    "top_label",
    "top_label_calibration_error",
    "top_label_calibration_error_parts",
    "top_label_reliability_table",
]
