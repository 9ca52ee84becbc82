"""The command line's one vocabulary: shared flags, comma lists and "did you mean" errors.

Every command spells the same concept the same way (``--lang/-l``,
``--task/-t``, ``--model/-m``, ``--n-boot``, ``--seed``, ``--out/-o``,
``--data-dir``, ``--store/-s`` where a store is written, a positional
``STORE`` where one is read). :data:`VOCABULARY` lists them;
``tests/test_cli_vocabulary.py`` walks every command's options and fails on a
concept spelled two ways. Old spellings survive only as hidden options that
:func:`merge` folds into the new one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NoReturn

import typer

from xcal.registry import did_you_mean

__all__ = ["did_you_mean", "fail", "merge", "resolve_filters", "split_csv"]

#: Every command accepts -h as well as --help.
CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"]}

#: concept -> its one spelling (long flag, short flag or None).
VOCABULARY: dict[str, tuple[str, str | None]] = {
    "language": ("--lang", "-l"),
    "task": ("--task", "-t"),
    "model": ("--model", "-m"),
    "metric": ("--metric", None),
    "perturbation": ("--perturbation", "-p"),
    "store written": ("--store", "-s"),
    "bootstrap resamples": ("--n-boot", None),
    "seed": ("--seed", None),
    "output": ("--out", "-o"),
    "data directory": ("--data-dir", None),
    "split": ("--split", None),
    "baseline": ("--baseline", "-b"),
    "quiet": ("--quiet", "-q"),
    "overwrite": ("--overwrite", None),
    "source language": ("--source-language", None),
    "config file": ("--config", "-c"),
    "distance measure": ("--measure", None),
    "URIEL view": ("--view", None),
    "severity": ("--severity", None),
}

#: How many examples or texts a command looks at (perturb, task-distance).
SAMPLE_SIZE = "--n"


def split_csv(values: Iterable[str] | None) -> list[str]:
    """Repeated and comma-separated values as one list, blanks dropped, order kept.

    >>> split_csv(["en,de", " fr ", "de"])
    ['en', 'de', 'fr']
    """
    out: list[str] = []
    for value in values or []:
        out.extend(x.strip() for x in str(value).split(",") if x.strip())
    return list(dict.fromkeys(out))


def merge(new: Sequence[str] | None, *old: Sequence[str] | None) -> list[str]:
    """The values of a flag and its hidden deprecated aliases, as one comma-split list."""
    return split_csv([*(new or []), *(v for values in old for v in (values or []))])


def fail(message: str, code: int = 2) -> NoReturn:
    """Print one red error line on stderr and exit (2: bad input by default)."""
    from rich.console import Console
    from rich.text import Text

    # Text, not markup: a message may hold brackets (``dev[0:600]``, ``[tasks]``).
    Console(stderr=True, soft_wrap=True).print(Text.assemble(("error: ", "red"), message))
    raise typer.Exit(code)


def version_callback(value: bool) -> None:
    if value:
        from xcal import __version__

        typer.echo(f"xcal {__version__}")
        raise typer.Exit()


def resolve_filters(
    wanted: Mapping[str, list[str]], available: Mapping[str, Iterable[Any]]
) -> dict[str, list[str]]:
    """The stored values each requested filter value names, or a "did you mean" error.

    ``wanted`` maps a manifest field (``task``, ``model``, ``language``, ...)
    to the values asked for; ``available`` to the values the store holds.
    Languages match by ISO 639 key (``deu``, ``de`` and ``de-AT`` all find a
    stored ``de`` or ``deu``); other fields match exactly.

    Raises
    ------
    ValueError
        A value names nothing stored: the message lists what is.

    Examples
    --------
    >>> resolve_filters({"language": ["deu", "zh"]}, {"language": ["de", "cmn", "en"]})
    {'language': ['de', 'cmn']}
    """
    from xcal.languages import language_key

    resolved: dict[str, list[str]] = {}
    for name, values in wanted.items():
        if not values:
            continue
        stored = sorted(dict.fromkeys(str(v) for v in available.get(name, [])))
        found: list[str] = []
        for value in values:
            if name == "language":
                key = language_key(value)
                matches = [s for s in stored if s == value or language_key(s) == key]
            else:
                matches = [s for s in stored if s == value]
            if not matches:
                raise ValueError(did_you_mean(name, value, stored) + " (in the store)")
            found.extend(matches)
        resolved[name] = list(dict.fromkeys(found))
    return resolved
