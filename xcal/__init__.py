"""xcal: calibration and zero-shot cross-lingual transfer analysis.

Two halves meet in one prediction store: ``xcal infer`` writes model outputs
into it and ``xcal analyze`` reads them. Importing :mod:`xcal` is cheap: torch
and transformers are imported only by the inference code that needs them.
"""

__version__ = "0.1.0"
