"""Errors raised by the prediction store, and the problems validation reports.

Every problem names where it was found (a file or a run), the field (column
or manifest field) and, when it concerns data, the first row at fault.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


class StoreError(Exception):
    """Base class of every error the prediction store raises on purpose."""


class StoreConflictError(StoreError):
    """A run with the same key but a different input fingerprint is already stored."""


class RunNotFoundError(StoreError, KeyError):
    """No run with this id (or matching these filters) is in the store."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class SchemaVersionError(StoreError):
    """A file was written with a store schema version this xcal cannot read."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a run or a file.

    ``level`` is ``"error"`` for anything that makes the data untrustworthy or
    unreadable, ``"warning"`` for harmless leftovers (a stale temporary file).
    """

    where: str  # a file path, or a description of the run being written
    message: str
    field: str | None = None
    row: int | None = None
    level: Literal["error", "warning"] = "error"

    def __str__(self) -> str:
        parts = [self.where]
        if self.field is not None:
            parts.append(f"field {self.field!r}")
        if self.row is not None:
            parts.append(f"row {self.row}")
        return ": ".join([", ".join(parts), self.message])


class StoreValidationError(StoreError, ValueError):
    """A run (being written or read) failed validation; ``problems`` lists why."""

    MAX_LISTED = 20

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = list(problems)
        lines = [str(p) for p in self.problems[: self.MAX_LISTED]]
        if len(self.problems) > self.MAX_LISTED:
            lines.append(f"... and {len(self.problems) - self.MAX_LISTED} more problem(s)")
        super().__init__("\n".join(lines))
