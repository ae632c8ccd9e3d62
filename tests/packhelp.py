"""``packing.packer.pack`` as the tests call it: with the Storage a face would build and pass down."""

from __future__ import annotations

import dataclasses
from typing import Any

from imgprep.packing import packer
from imgprep.packing.packer import PackOptions, PackSummary
from imgprep.storage.stores import Storage

__all__ = ["PackOptions", "pack"]


def pack(items: Any, source: Any, output: Any, spec: Any = None, options: PackOptions | None = None) -> PackSummary:
    options = options or PackOptions()
    if options.storage is None:
        options = dataclasses.replace(options, storage=Storage())
    return packer.pack(items, source, output, spec, options)
