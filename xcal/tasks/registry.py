"""The task registry: one instance per task name.

A task module registers its class with :func:`register_task`; adding a task is
adding a module and importing it in :mod:`xcal.tasks`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

from xcal.registry import Registry

if TYPE_CHECKING:
    from xcal.tasks.base import Task

TASKS: Registry[Task] = Registry("task")

T = TypeVar("T", bound="type[Task]")


def register_task(cls: T) -> T:
    """Class decorator: register one instance of ``cls`` under ``cls.name``."""
    TASKS.add(cls.name, cls())
    return cls
