"""Benchmarks: each prints a ratio against a named baseline measured in the same run.

Run them all with ``python -m benchmarks`` (or ``make bench``); results go to
``reports/bench/results.json`` and ``reports/bench/results.md``.
"""
