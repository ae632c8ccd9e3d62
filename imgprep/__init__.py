"""imgprep: fast, deterministic data preparation for image classification.

Importing this package is cheap; submodules (and Pillow, numpy, boto3) load on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "pack": "imgprep.api:pack",
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

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
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
