"""A small decorator registry: one per kind of thing (backbones, datasets, methods)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from clipgap.errors import UnknownNameError, suggest

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to objects, refusing duplicates and explaining unknown names.

    >>> methods = Registry("method")
    >>> @methods.register("full")
    ... class Full: ...
    >>> methods.get("full") is Full
    True
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def decorator(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._items[name] = obj
            return obj

        return decorator

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise UnknownNameError(
                f"unknown {self.kind} {name!r}{suggest(name, self._items)}; "
                f"choose from: {', '.join(sorted(self._items))}"
            ) from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._items)
