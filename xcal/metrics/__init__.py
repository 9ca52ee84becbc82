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
from xcal.metrics.selective import (
    RiskCoverageCurve,
    aurc_loss,
    risk_coverage_curve,
    selective_accuracy_score,
    top_label_aurc_loss,
    top_label_risk_coverage_curve,
    top_label_selective_accuracy_score,
)
from xcal.metrics.smooth import smooth_calibration_error, top_label_smooth_calibration_error

__all__ = [
    "CalibrationErrorParts",
    "ReliabilityTable",
    "RiskCoverageCurve",
    "accuracy_score",
    "aurc_loss",
    "brier_score_loss",
    "calibration_error_parts",
    "classwise_calibration_error",
    "debiased_calibration_error",
    "expected_calibration_error",
    "log_softmax",
    "max_calibration_error",
    "nll_loss",
    "reliability_table",
    "risk_coverage_curve",
    "rms_calibration_error",
    "selective_accuracy_score",
    "smooth_calibration_error",
    "softmax",
    "top_label",
    "top_label_aurc_loss",
    "top_label_calibration_error",
    "top_label_calibration_error_parts",
    "top_label_reliability_table",
    "top_label_risk_coverage_curve",
    "top_label_selective_accuracy_score",
    "top_label_smooth_calibration_error",
]
