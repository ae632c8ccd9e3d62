"""``imgprep.convert``, ``imgprep.verify`` and ``imgprep.inspect``: submodules that are also the API's functions.

Python binds a submodule on its package when it loads (``import imgprep.convert`` sets the
package's ``convert`` attribute to the module), so a plain function of that name would be replaced
by whatever imports the module first -- the API itself does.  Instead these three modules are
created as :class:`CallableModule` by their loader (the import system's ``create_module`` hook),
and calling one runs the API function of the same name.  Only the module object's type differs:
the files are found, compiled and executed by Python's own loader.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import sys
import types
from typing import Any

CALLABLE_MODULES = ("convert", "verify", "inspect")
_NAMES = {f"imgprep.{name}" for name in CALLABLE_MODULES}


class CallableModule(types.ModuleType):
    """A submodule that, called, runs the API function of the same name."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        api = importlib.import_module("imgprep.api")
        return getattr(api, self.__name__.rpartition(".")[2])(*args, **kwargs)


class _Loader:
    """Python's loader for the file, creating the module as a :class:`CallableModule`."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        return CallableModule(spec.name)

    def exec_module(self, module: types.ModuleType) -> None:
        self._inner.exec_module(module)

    def __getattr__(self, name: str) -> Any:  # get_source, get_code, is_package ... as Python's
        return getattr(self._inner, name)


class _Finder:
    """Finds the three modules as Python would, handing them to :class:`_Loader`."""

    @staticmethod
    def find_spec(name: str, path: Any = None, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if name not in _NAMES:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path, target)
        if spec is not None and spec.loader is not None:
            spec.loader = _Loader(spec.loader)
        return spec


def install() -> None:
    """Put the finder first on ``sys.meta_path`` (once per process)."""
    if not any(isinstance(finder, _Finder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _Finder())
