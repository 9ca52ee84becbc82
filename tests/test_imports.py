"""Importing the analysis side of xcal (and running `xcal --help`) never imports torch.

torch and transformers are imported only inside the inference functions that
need them. Each check runs in a fresh interpreter, so modules imported by other
tests cannot hide (or fake) an import.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

HEAVY = ("torch", "transformers")
# Every package that must stay light; packages not written yet are left out.
LIGHT_PACKAGES = [
    "xcal",
    "xcal.store",
    "xcal.metrics",
    "xcal.stats",
    "xcal.calibrate",
    "xcal.analyze",
    "xcal.transfer",
    "xcal.perturb",
    "xcal.tasks",
    "xcal.registry",
    "xcal.paths",
    "xcal.cli",
]


def heavy_modules_after(code: str, report_prefix: str | None = None) -> Any:
    probe = "\n".join(
        [
            "import sys",
            code,
            f"print('HEAVY:' + ','.join(m for m in {HEAVY!r} if m in sys.modules))",
        ]
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    if report_prefix is not None:
        found = {}
        for line in lines:
            if line.startswith(report_prefix):
                package, _, heavy = line.removeprefix(report_prefix).partition(":")
                if heavy:
                    found[package] = heavy
        return found
    (line,) = [line for line in lines if line.startswith("HEAVY:")]
    return [m for m in line.removeprefix("HEAVY:").split(",") if m]


def test_light_packages_do_not_import_torch() -> None:
    present = [p for p in LIGHT_PACKAGES if importlib.util.find_spec(p) is not None]
    assert {"xcal", "xcal.store", "xcal.cli"} <= set(present)
    # One interpreter, packages imported one by one: the first to pull in torch is named.
    code = "\n".join(
        f"import {p}\nprint('AFTER {p}:' + ','.join(m for m in {HEAVY!r} if m in sys.modules))"
        for p in present
    )
    culprits = heavy_modules_after(code, report_prefix="AFTER ")
    assert culprits == {}, f"importing these imports torch/transformers: {culprits}"


def test_xcal_help_works_without_torch() -> None:
    code = textwrap.dedent(
        """
        from xcal.cli import app
        try:
            app(["--help"])
        except SystemExit as exc:
            assert exc.code == 0, exc.code
        """
    )
    assert heavy_modules_after(code) == []


def test_xcal_help_entry_point() -> None:
    xcal = Path(sys.executable).parent / "xcal"
    done = subprocess.run([str(xcal), "--help"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    for command in ("infer", "analyze", "store"):
        assert command in done.stdout
