"""The one plugin mechanism: a named registry per kind of thing.

Methods, dataset kinds, backbone schemes (``hf:``, ``local-dir:``, named models), executors and
CLI commands all register the same way::

    methods = Registry("method", plugins=["clipgap.methods.full", ...])

    @methods.register("full")
    class Full(Method): ...

``register`` refuses a duplicate name and sets the object's ``name`` attribute (where the object
allows it) so the object knows what it is called. ``plugins`` are the modules that register
into the registry; they are imported on first use, and a missing one raises (a registry never
silently loses an entry). Unknown names get a "did you mean" and the list of valid ones.
"""

from __future__ import annotations

import contextlib
import importlib
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Generic, TypeVar

from clipgap.errors import UnknownNameError, suggest

T = TypeVar("T")


def load_plugins(modules: Iterable[str]) -> None:
    """Import every module in ``modules``; a module that does not exist raises ImportError
    naming it (only a missing dependency *inside* a module propagates as its own error)."""
    for module in modules:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name == module:
                raise ImportError(f"plugin module {module!r} does not exist") from None
            raise


class Registry(Generic[T]):
    """Maps names to objects, refusing duplicates and explaining unknown names.

    >>> shapes = Registry("shape")
    >>> @shapes.register("circle")
    ... class Circle: ...
    >>> shapes.get("circle") is Circle and Circle.name == "circle"
    True
    """

    def __init__(self, kind: str, *, plugins: Iterable[str] = ()) -> None:
        self.kind = kind
        self.plugins = tuple(plugins)
        self._items: dict[str, T] = {}
        self._loaded = not self.plugins
        # re-entrant: a plugin module may look the registry up while it is being imported; other
        # threads wait until every plugin is in (never see a half-filled registry)
        self._lock = threading.RLock()
        self._importing = False

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: register ``obj`` under ``name`` and set ``obj.name = name``."""

        def decorator(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._items[name] = obj
            # objects without settable attributes (frozen dataclasses) keep their own name
            with contextlib.suppress(AttributeError, TypeError):
                obj.name = name  # type: ignore[attr-defined]
            return obj

        return decorator

    def _ensure(self) -> None:
        if self._loaded:
            return
        with self._lock:
            if self._loaded or self._importing:
                return
            self._importing = True
            try:
                load_plugins(self.plugins)
                self._loaded = True
            finally:
                self._importing = False

    def get(self, name: str) -> T:
        self._ensure()
        try:
            return self._items[name]
        except KeyError:
            raise UnknownNameError(
                f"unknown {self.kind} {name!r}{suggest(name, self._items)}; "
                f"choose from: {', '.join(sorted(self._items))}"
            ) from None

    def items(self) -> list[tuple[str, T]]:
        """(name, object) pairs in registration order."""
        self._ensure()
        return list(self._items.items())

    def names(self) -> list[str]:
        self._ensure()
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        self._ensure()
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        self._ensure()
        return len(self._items)
