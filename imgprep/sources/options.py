"""The per-source options as one typed object.

The faces (CLI, API, Processing job) build one :class:`SourceOptions` from the user's options;
:meth:`imgprep.sources.registry.Kind.load` hands the kind's loader the ones it takes and refuses
the others, so an option the user gave is never silently ignored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any


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
