"""imgprep: fast, deterministic data preparation for image classification.

Importing this package is cheap; submodules (and Pillow, numpy, boto3) load on first use.
``imgprep.convert/prepare/pack/verify/inspect`` are the CLI's commands as functions
(:mod:`imgprep.api`).  Three of them share their name with a submodule (``imgprep.convert``,
``imgprep.verify``, ``imgprep.inspect``), which Python's import system binds on this package
when it loads; those submodules are created callable (:mod:`imgprep._callable`), so
``imgprep.verify(...)`` works whichever was imported first.
"""

from __future__ import annotations

import importlib
from typing import Any

from imgprep._callable import CALLABLE_MODULES, install

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

__all__ = ["__version__", *CALLABLE_MODULES, *_LAZY]

install()  # before any of them is imported: each is created callable, never converted


def __getattr__(name: str) -> Any:
    if name in CALLABLE_MODULES:
        return importlib.import_module(f"imgprep.{name}")  # callable: see imgprep._callable
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
