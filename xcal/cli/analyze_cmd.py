"""``xcal analyze``: from a prediction store to tables, figures and DataFrames."""

from __future__ import annotations

import typer


def analyze() -> None:
    """Analyse a prediction store (not built yet)."""
    typer.echo("xcal analyze: the analysis pipeline is not built yet.", err=True)
    raise typer.Exit(2)
