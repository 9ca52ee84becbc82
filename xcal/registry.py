"""A small name -> object registry shared by tasks and perturbations.

Adding a task or a perturbation means adding one module that registers itself;
no central switch statement is edited. A duplicate name is refused so that two
modules can never silently shadow each other.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


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
            known = ", ".join(sorted(self._items)) or "(none)"
            raise KeyError(f"unknown {self.kind} {name!r}; known: {known}") from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._items)
