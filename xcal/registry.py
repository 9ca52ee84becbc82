"""A small name -> object registry shared by tasks and perturbations.

Adding a task or a perturbation means adding one module that registers itself;
no central switch statement is edited. A duplicate name is refused so that two
modules can never silently shadow each other.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


def did_you_mean(what: str, value: str, known: Iterable[str]) -> str:
    """An error message for an unknown name: the close ones, then every known one.

    >>> did_you_mean("task", "xnl", ["xnli", "pawsx"])
    "unknown task 'xnl' (did you mean 'xnli'?); known: pawsx, xnli"
    >>> did_you_mean("colour", "blue", ["red"])
    "unknown colour 'blue'; known: red"
    """
    names = sorted(dict.fromkeys(str(k) for k in known))
    close = difflib.get_close_matches(str(value), names, n=3, cutoff=0.6)
    hint = f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""
    return f"unknown {what} {value!r}{hint}; known: {', '.join(names) or '(none)'}"


class Registry(Generic[T]):
    """Map names to objects; refuse duplicates; list known names in errors.

    Examples
    --------
    >>> colours = Registry[str]("colour")
    >>> colours.add("red", "#f00")
    >>> colours.get("red")
    '#f00'
    >>> colours.get("blue")
    Traceback (most recent call last):
    ...
    KeyError: "unknown colour 'blue'; known: red"
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def add(self, name: str, item: T) -> None:
        if name in self._items:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._items[name] = item

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator form of :meth:`add`."""

        def decorate(item: T) -> T:
            self.add(name, item)
            return item

        return decorate

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise KeyError(did_you_mean(self.kind, name, self._items)) from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._items)
