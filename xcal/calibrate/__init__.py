"""Recalibration: fit a map from logits to probabilities on one set, apply it to others.

The main use is zero-shot recalibration: fit on English dev, apply to every
other language (and, as an upper reference, fit on each language itself).

>>> from xcal.calibrate import get_calibrator, calibrator_names
>>> calibrator_names()
['beta', 'beta_netcal', 'histogram', 'isotonic', 'platt', 'temperature', 'vector']

``get_calibrator(name).fit(logits_en_dev, y_en_dev).predict_proba(logits_de)``
returns float64 probabilities. Parametric methods (temperature, vector, Platt,
beta) are fitted here with scipy; histogram binning and isotonic regression
wrap netcal.
"""

from xcal.calibrate._base import (
    CALIBRATORS,
    Calibrator,
    NotFittedError,
    calibrator_names,
    get_calibrator,
)
from xcal.calibrate.binning import HistogramBinning, IsotonicCalibration, NetcalBetaCalibration
from xcal.calibrate.scaling import BetaCalibration, PlattScaling, TemperatureScaling, VectorScaling

__all__ = [
    "CALIBRATORS",
    "BetaCalibration",
    "Calibrator",
    "HistogramBinning",
    "IsotonicCalibration",
    "NetcalBetaCalibration",
    "NotFittedError",
    "PlattScaling",
    "TemperatureScaling",
    "VectorScaling",
    "calibrator_names",
    "get_calibrator",
]
