"""The five dataset kinds, their per-source options as one typed object, and loading by kind.

The faces (CLI, API, Processing job) build one :class:`SourceOptions` from the user's options;
:func:`load` hands each loader the options it understands and refuses the ones it does not, so
an option the user gave is never silently ignored.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

from imgprep.errors import UsageError
from imgprep.sources import KINDS
from imgprep.sources.loaded import Dataset


@dataclass(frozen=True)
class SourceOptions:
    """Options of one source kind, named as on the command line; None: the source's default."""

    extensions: Sequence[str] | None = None  # folders, caltech
    class_depth: int | None = None  # folders
    leaf_classes: bool | None = None  # folders
    classes: Sequence[str] | None = None  # folders (--classes)
    drop_clutter: bool | None = None  # caltech
    categories: Sequence[str | int] | None = None  # coco
    include_crowd: bool | None = None  # coco (--crowd/--no-crowd)
    min_area: float | None = None  # coco
    keep_empty: bool | None = None  # coco
    variant: str | None = None  # mnist
    root: str | None = None  # manifest: [S3PREFIX=]DIR
    source_attribute: str | None = None  # manifest: the input's label attribute
    source_label_format: str | None = None  # manifest: class-id or multi-hot

    def loader_options(self) -> dict[str, Any]:
        """The options that were given, under the loaders' parameter names."""
        renamed = {"source_attribute": "attribute", "source_label_format": "label_format"}
        given = {f.name: getattr(self, f.name) for f in fields(self)}
        return {renamed.get(name, name): value for name, value in given.items() if value is not None}


def _loader(kind: str) -> Any:
    if kind == "folders":
        from imgprep.sources.folders import load_folders as loader
    elif kind == "caltech":
        from imgprep.sources.caltech import load_caltech as loader
    elif kind == "coco":
        from imgprep.sources.coco import load_coco as loader
    elif kind == "mnist":
        from imgprep.sources.mnist import load_mnist as loader
    elif kind == "manifest":
        from imgprep.sources.gtmanifest import load_manifest as loader
    else:
        raise UsageError(f"unknown dataset kind {kind!r} (one of {', '.join(KINDS)})")
    return loader


def load(kind: str, input: str, **options: Any) -> Dataset:
    """Load ``input`` with the ``kind`` source; ``options`` are loader keywords (None: not given)."""
    loader = _loader(kind)
    accepted = set(inspect.signature(loader).parameters)
    unknown = sorted(k for k, v in options.items() if k not in accepted and v is not None)
    if unknown:
        flags = ", ".join("--" + k.replace("_", "-") for k in unknown)
        raise UsageError(f"{flags} cannot be used with {kind} data")
    return loader(input, **{k: v for k, v in options.items() if k in accepted and v is not None})
