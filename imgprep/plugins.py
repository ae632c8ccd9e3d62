"""One registry shape for what imgprep lets a module add: dataset kinds (:mod:`imgprep.sources`)
and output formats (:mod:`imgprep.outputs`).  Pillow's plugin registry is the model: a module
registers its object when imported, and the built-in modules are imported on first use, so listing
the CLI's commands loads none of them."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Generic, Protocol, TypeVar

from imgprep.errors import UsageError


class Named(Protocol):
    name: str


T = TypeVar("T", bound=Named)


class Registry(Generic[T]):
    """``what``s by name; ``builtin`` maps each shipped name to the module that registers it."""

    def __init__(self, what: str, builtin: Mapping[str, str]) -> None:
        self.what, self.builtin = what, dict(builtin)
        self.items: dict[str, T] = {}

    def register(self, item: T) -> T:
        """Make ``item`` available under its name (a later registration replaces it)."""
        self.items[item.name] = item
        return item

    def names(self) -> tuple[str, ...]:
        """Every name, the built-in ones first."""
        return tuple(dict.fromkeys([*self.builtin, *self.items]))

    def get(self, name: str) -> T:
        """The one called ``name``; an unknown name is one line naming the known ones."""
        if name not in self.items and name in self.builtin:
            importlib.import_module(self.builtin[name])
        found = self.items.get(name)
        if found is None:
            raise UsageError(f"unknown {self.what} {name!r} (one of {', '.join(self.names())})")
        return found
