"""The ``xcal`` command line: parse, call the library, print.

Each subcommand lives in its own module and imports the heavy parts of the
library inside its function body, so ``xcal --help`` stays fast.
"""

from __future__ import annotations

import typer

from xcal.cli import (
    analyze_cmd,
    demo_cmd,
    import_cmd,
    infer_cmd,
    perturb_cmd,
    store_cmd,
    transfer_cmd,
)

app = typer.Typer(
    name="xcal",
    help="Calibration under zero-shot cross-lingual transfer: infer, store, analyze.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(store_cmd.app, name="store")
app.command("infer")(infer_cmd.infer)
app.command("analyze")(analyze_cmd.analyze)
app.command("perturb")(perturb_cmd.perturb)
app.add_typer(transfer_cmd.app, name="transfer")
app.command("demo")(demo_cmd.demo)
app.add_typer(import_cmd.app, name="import")


def main() -> None:
    app()
