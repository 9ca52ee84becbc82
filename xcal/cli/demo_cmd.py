"""``xcal demo``: the offline mini-experiment, from training to the report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def demo(
    profile: Annotated[
        str,
        typer.Option(
            "--profile",
            help="'full' (the README's study, under 30 min on 2 cores) or 'ci' (reduced, ~3 min).",
        ),
    ] = "full",
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            help="XTREME data directory (default: $XCAL_DATA_DIR, else ../shared/data/xtreme).",
        ),
    ] = None,
    work_dir: Annotated[
        Path,
        typer.Option(
            "--work-dir", help="Checkpoints and the prediction store (reused by later runs)."
        ),
    ] = Path("reports/demo-work"),
    out: Annotated[Path, typer.Option("--out", "-o", help="Where the report is written.")] = Path(
        "reports/demo"
    ),
) -> None:
    """Train the bundled encoder on five English intermediate tasks, then on English XNLI
    and TyDiQA; run every system on XNLI (15 languages, clean and perturbed), XQuAD, MLQA
    and Tatoeba (98 languages); write the calibration report. A second run reuses
    checkpoints, runs and analysis."""
    from rich.console import Console

    from xcal.demo.experiment import run_demo
    from xcal.paths import DataDirError

    console = Console()
    try:
        result = run_demo(
            profile, data_dir=data_dir, work_dir=work_dir, report_dir=out, log=console.print
        )
    except DataDirError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    console.print(f"report: {result.report_dir / 'index.md'}")
