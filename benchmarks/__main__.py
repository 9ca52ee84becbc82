"""Run every benchmark and write ``reports/bench/results.{json,md}``.

Usage: ``python -m benchmarks [NAME ...]`` where NAME is a module suffix
(``ece``, ``bootstrap``, ``infer``, ``store``, ``perturb``, ``transfer``); no name runs them all.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path

import benchmarks
from benchmarks._common import Result

OUT_DIR = Path("reports") / "bench"


def _modules(selected: list[str]) -> list[str]:
    found = sorted(
        m.name for m in pkgutil.iter_modules(benchmarks.__path__) if m.name.startswith("bench_")
    )
    if not selected:
        return found
    wanted = [f"bench_{name.removeprefix('bench_')}" for name in selected]
    unknown = sorted(set(wanted) - set(found))
    if unknown:
        raise SystemExit(f"unknown benchmark(s) {unknown}; known: {found}")
    return wanted


def _markdown(results: list[Result]) -> str:
    lines = [
        "| benchmark | subject | s | baseline | s | speedup | target | met |",
        "| --- | --- | ---: | --- | ---: | ---: | --- | --- |",
    ]
    for r in results:
        base_s = "" if r.baseline_s is None else f"{r.baseline_s:.3f}"
        speedup = "" if r.speedup is None else f"{r.speedup:.2f}x"
        lines.append(
            f"| {r.benchmark} | {r.subject} | {r.subject_s:.3f} | {r.baseline} | "
            f"{base_s} | {speedup} | {r.target} | {'yes' if r.passed else 'no'} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    results: list[Result] = []
    for name in _modules(argv):
        print(f"== {name}", flush=True)
        module = importlib.import_module(f"benchmarks.{name}")
        for result in module.run():
            versus = (
                ""
                if result.baseline_s is None
                else f" vs {result.baseline} {result.baseline_s:.3f}s -> {result.speedup:.2f}x"
            )
            print(
                f"  {result.benchmark}: {result.subject} {result.subject_s:.3f}s{versus} "
                f"(target {result.target}: {'met' if result.passed else 'NOT met'})",
                flush=True,
            )
            results.append(result)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    meta = {
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "command": "python -m benchmarks " + " ".join(argv),
    }
    payload = {"meta": meta, "results": [r.to_dict() for r in results]}
    (OUT_DIR / "results.json").write_text(json.dumps(payload, indent=2) + "\n")
    (OUT_DIR / "results.md").write_text(_markdown(results))
    print(f"wrote {OUT_DIR / 'results.json'} and {OUT_DIR / 'results.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
