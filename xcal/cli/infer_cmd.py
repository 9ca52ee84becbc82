"""``xcal infer``: run models over tasks, languages and perturbations into a store."""

from __future__ import annotations

import typer


def infer() -> None:
    """Run models over a grid of tasks x languages x perturbations (not built yet)."""
    typer.echo("xcal infer: the inference runner is not built yet.", err=True)
    raise typer.Exit(2)
