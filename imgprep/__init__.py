"""imgprep: fast, deterministic data preparation for image classification.

Importing this package is cheap; submodules (and Pillow, numpy, boto3) load on first use.
``imgprep.convert/prepare/pack/verify/inspect`` are the CLI's commands as functions
(:mod:`imgprep.api`).  Three of them share their name with a submodule (``imgprep.convert``,
``imgprep.verify``, ``imgprep.inspect``), which Python's import system binds on this package
when it loads; those submodules are made callable as the API function, so ``imgprep.verify(...)``
works whichever was imported first.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "prepare": "imgprep.api:prepare",
    "pack": "imgprep.api:pack",
    "ConvertOptions": "imgprep.convert:ConvertOptions",
    "SourceOptions": "imgprep.sources.options:SourceOptions",
    "read_list": "imgprep.api:read_list",
    "read_lists": "imgprep.api:read_lists",
    "PackOptions": "imgprep.packing.packer:PackOptions",
    "PackSummary": "imgprep.packing.packer:PackSummary",
    "TransformSpec": "imgprep.imaging.spec:TransformSpec",
    "LstItem": "imgprep.formats.lst:LstItem",
    "read_lst": "imgprep.formats.lst:read_lst",
    "write_lst": "imgprep.api:write_lst",
    "Storage": "imgprep.storage.stores:Storage",
    "recordio": "imgprep.formats.recordio",
    "errors": "imgprep.errors",
    "ImgprepError": "imgprep.errors:ImgprepError",
}

_CALLABLE_MODULES = ("convert", "verify", "inspect")  # submodules that are also imgprep.api functions

__all__ = ["__version__", *_CALLABLE_MODULES, *_LAZY]


class _CallableModule(types.ModuleType):
    """A submodule that, called, runs the API function of the same name."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        api = importlib.import_module("imgprep.api")
        return getattr(api, self.__name__.rpartition(".")[2])(*args, **kwargs)


class _Package(types.ModuleType):
    def __setattr__(self, name: str, value: Any) -> None:
        if name in _CALLABLE_MODULES and isinstance(value, types.ModuleType):
            value.__class__ = _CallableModule  # the import system binding imgprep.<name> to the submodule
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


def __getattr__(name: str) -> Any:
    if name in _CALLABLE_MODULES:
        return importlib.import_module(f"imgprep.{name}")  # callable: see _CallableModule
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'imgprep' has no attribute {name!r}")
    module, _, attr = target.partition(":")
    value = importlib.import_module(module)
    if attr:
        value = getattr(value, attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
