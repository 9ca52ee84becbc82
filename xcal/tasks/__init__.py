"""XTREME tasks: readers for the standard download layout and a task registry.

>>> from xcal.tasks import get_task, task_names
>>> task_names()
['bucc2018', 'mlqa', 'pawsx', 'tatoeba', 'tydiqa', 'xcopa', 'xnli', 'xquad']
>>> get_task("xnli").label_names
('contradiction', 'entailment', 'neutral')
"""

from __future__ import annotations

# Importing the task modules registers their tasks.
from xcal.tasks import multiple_choice, pair, qa, retrieval  # noqa: F401
from xcal.tasks.base import (
    Candidate,
    ChoiceExample,
    Example,
    MissingDataError,
    PairExample,
    QAAnswer,
    QAExample,
    RetrievalExample,
    RetrievalTask,
    Task,
    TaskDataError,
    example_texts,
)
from xcal.tasks.registry import TASKS, register_task


class UnknownTaskError(KeyError):
    """A task name that is not registered (the message lists the known ones)."""

    def __str__(self) -> str:
        return str(self.args[0])


def get_task(name: str) -> Task:
    """The registered task called ``name``.

    Raises
    ------
    UnknownTaskError
        If no task has that name; the message lists the known tasks.

    Examples
    --------
    >>> get_task("tatoeba").record_kind
    'retrieval'
    >>> get_task("squad")
    Traceback (most recent call last):
    ...
    xcal.tasks.UnknownTaskError: unknown task 'squad' (did you mean 'xquad'?); known: bucc2018, mlqa, pawsx, tatoeba, tydiqa, xcopa, xnli, xquad
    """
    try:
        return TASKS.get(name)
    except KeyError as exc:
        raise UnknownTaskError(exc.args[0]) from None


def task_names() -> list[str]:
    """Names of every registered task, sorted."""
    return TASKS.names()


__all__ = [
    "TASKS",
    "Candidate",
    "ChoiceExample",
    "Example",
    "MissingDataError",
    "PairExample",
    "QAAnswer",
    "QAExample",
    "RetrievalExample",
    "RetrievalTask",
    "Task",
    "TaskDataError",
    "UnknownTaskError",
    "example_texts",
    "get_task",
    "register_task",
    "task_names",
]
