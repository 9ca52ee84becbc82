"""``xcal store``: inspect and validate a prediction store."""

from __future__ import annotations

import typer

app = typer.Typer(help="Inspect and validate a prediction store.", no_args_is_help=True)
