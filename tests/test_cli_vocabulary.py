"""One vocabulary: every command spells a concept the same way (typer/click introspection).

The test walks every command of ``xcal`` and every option it shows. It fails
when a concept of :data:`CONCEPTS` is spelled otherwise (``--language`` for
``--lang``, ``--tasks`` for ``--task``, ``--B`` for ``--n-boot``), when one
short flag stands for two long ones, when a visible option has two long
spellings, or when a hidden option is not a listed deprecated alias.
"""

from __future__ import annotations

from typing import Annotated, Any

import pytest
import typer
from typer.testing import CliRunner

from xcal import __version__
from xcal.cli import app
from xcal.cli.options import VOCABULARY

# concept: (its one spelling, short flag, spellings that must not be shown anywhere)
CONCEPTS: dict[str, tuple[str, str | None, tuple[str, ...]]] = {
    "language": ("--lang", "-l", ("--language", "--languages", "--langs")),
    "task": ("--task", "-t", ("--tasks",)),
    "model": ("--model", "-m", ("--models",)),
    "metric": ("--metric", None, ("--metrics",)),
    "perturbation": ("--perturbation", "-p", ("--perturbations", "--name")),
    "store written": ("--store", "-s", ("--store-dir", "--preds")),
    "bootstrap resamples": ("--n-boot", None, ("--B", "--b", "--n-bootstrap", "--bootstrap")),
    "seed": ("--seed", None, ("--seeds", "--random-seed")),
    "output": ("--out", "-o", ("--output", "--out-dir")),
    "data directory": ("--data-dir", None, ("--data", "--data-root")),
    "split": ("--split", None, ("--splits",)),
    "baseline": ("--baseline", "-b", ()),
    "quiet": ("--quiet", "-q", ()),
    "overwrite": ("--overwrite", None, ("--force",)),
    "source language": ("--source-language", None, ("--source-lang", "--english")),
    "config file": ("--config", "-c", ()),
    "distance measure": ("--measure", None, ("--measures",)),
    "URIEL view": ("--view", None, ("--views",)),
    "severity": ("--severity", None, ()),
}

# Old spellings kept working, hidden from help: (command path, flag).
DEPRECATED = {
    ("infer", "--languages"),
    ("infer", "--perturbations"),
    ("infer", "--seeds"),
    ("infer", "--data"),
    ("analyze", "--language"),
    ("analyze", "--metrics"),
    ("analyze", "-m"),  # the old short flag of --metric; analyze has no --model
    ("store ls", "--language"),
    ("perturb", "--language"),
    ("perturb", "--name"),
    ("transfer task-distance", "--tasks"),
    ("transfer task-distance", "--language"),
    ("transfer lang-distance", "--metric"),
    ("transfer correlate", "--B"),
    ("transfer gap", "--B"),
}


# Typer vendors its own click (typer._click), so commands and options are
# recognised by what they have, not by click's classes.
def _commands() -> list[tuple[str, Any]]:
    root = typer.main.get_command(app)
    found: list[tuple[str, Any]] = []

    def walk(path: str, command: Any) -> None:
        if hasattr(command, "commands"):
            for name, sub in command.commands.items():
                walk(f"{path} {name}".strip(), sub)
        else:
            found.append((path, command))

    walk("", root)
    return found


COMMANDS = _commands()


def _options(command: Any) -> list[Any]:
    return [p for p in command.params if p.param_type_name == "option"]


def test_the_walk_sees_every_command() -> None:
    names = {path for path, _ in COMMANDS}
    for expected in ("infer", "analyze", "perturb", "store ls", "import lm-eval", "transfer gap"):
        assert expected in names
    assert len(names) >= 14


def test_the_test_and_the_cli_module_list_the_same_concepts() -> None:
    assert {k: (v[0], v[1]) for k, v in CONCEPTS.items()} == VOCABULARY


def _problems(path: str, command: Any) -> list[str]:
    problems = []
    for option in _options(command):
        flags = [*option.opts, *option.secondary_opts]
        if option.hidden:
            for flag in flags:
                if (path, flag) not in DEPRECATED:
                    problems.append(f"hidden {flag} is not a listed deprecated alias")
            continue
        longs = [f for f in option.opts if f.startswith("--")]
        shorts = [f for f in option.opts if not f.startswith("--")]
        if len(longs) > 1:
            problems.append(f"{'/'.join(longs)}: one option, two long spellings")
        for concept, (long, short, others) in CONCEPTS.items():
            for flag in flags:
                if flag in others:
                    problems.append(f"{flag}: the {concept} is spelled {long}")
            if long in longs and short is not None and shorts != [short]:
                problems.append(f"{long} has short flag(s) {shorts}, expected {short}")
            if short is not None and short in shorts and long not in longs:
                problems.append(f"{short} is {long} everywhere, here {longs}")
    return problems


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[p for p, _ in COMMANDS])
def test_each_concept_has_one_spelling(path: str, command: Any) -> None:
    problems = _problems(path, command)
    assert not problems, f"xcal {path}: " + "; ".join(problems)


def test_the_check_finds_a_second_spelling() -> None:
    """The check itself, on a command spelled as xcal's were before one vocabulary."""
    old = typer.Typer()

    @old.command()
    def analyze(
        language: Annotated[list[str] | None, typer.Option("--language", "--lang")] = None,
        b: Annotated[int, typer.Option("--B")] = 10,
        metrics: Annotated[list[str] | None, typer.Option("--metrics", "-m")] = None,
        quiet: Annotated[bool, typer.Option("--quiet", hidden=True)] = False,
    ) -> None: ...

    @old.command()
    def other() -> None: ...

    command = typer.main.get_command(old).commands["analyze"]
    found = " | ".join(_problems("analyze", command))
    assert "--language/--lang: one option, two long spellings" in found
    assert "--language: the language is spelled --lang" in found
    assert "--B: the bootstrap resamples is spelled --n-boot" in found
    assert "--metrics: the metric is spelled --metric" in found
    assert "-m is --model everywhere, here ['--metrics']" in found
    assert "hidden --quiet is not a listed deprecated alias" in found


def test_a_short_flag_means_one_thing_everywhere() -> None:
    meaning: dict[str, set[str]] = {}
    for _, command in COMMANDS:
        for option in _options(command):
            if option.hidden:
                continue
            longs = [f for f in option.opts if f.startswith("--")]
            for short in (f for f in option.opts if not f.startswith("--")):
                meaning.setdefault(short, set()).update(longs)
    assert {s: ls for s, ls in meaning.items() if len(ls) > 1} == {}


def test_deprecated_aliases_exist() -> None:
    """A listed alias that no command has any more is removed from the list too."""
    present = {
        (path, flag)
        for path, command in COMMANDS
        for option in _options(command)
        if option.hidden
        for flag in option.opts
    }
    assert DEPRECATED <= present, DEPRECATED - present


runner = CliRunner()


@pytest.mark.parametrize("path", [p for p, _ in COMMANDS])
def test_dash_h_is_help(path: str) -> None:
    result = runner.invoke(app, [*path.split(), "-h"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "Usage: xcal" in result.output and "--help" in result.output


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"xcal {__version__}"


def test_help_texts_lose_no_words_to_rich_markup() -> None:
    # typer renders help with rich, which reads "[word]" as a style tag and
    # drops it: "[tasks] tables" printed as " tables" until it was escaped.
    from rich.text import Text

    texts = [(path, "", command.help or "") for path, command in COMMANDS]
    texts += [
        (path, param.name, getattr(param, "help", None) or "")
        for path, command in COMMANDS
        for param in command.params
    ]
    lost = [
        (path, name, text)
        for path, name, text in texts
        if Text.from_markup(text).plain != text.replace("\\[", "[")
    ]
    assert not lost
