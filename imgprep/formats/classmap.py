"""``classes.json``: what each class index means, and how many images each split holds.

The file is for people and for later steps (evaluation, deployment) that must turn the
model's output index back into a name; it records the coarse group of nested-folder classes
and the source's own id (COCO category id, Caltech number) so nothing is lost in renumbering.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from imgprep.errors import FormatError
from imgprep.formats.paths import check_regular


class ClassInfo(Protocol):
    """What a class entry needs (``imgprep.sources.loaded.ClassInfo`` has it; formats import no source)."""

    @property
    def name(self) -> str: ...
    @property
    def path(self) -> str | None: ...
    @property
    def group(self) -> str | None: ...
    @property
    def source_id(self) -> int | str | None: ...


def build(
    *,
    kind: str,
    classes: Sequence[ClassInfo],
    multi_label: bool,
    split_counts: Mapping[str, np.ndarray],
    split_sizes: Mapping[str, int],
) -> dict[str, Any]:
    """The ``classes.json`` document (plain JSON types only, stable key order)."""
    entries = []
    groups: dict[str, list[int]] = {}
    for i, c in enumerate(classes):
        entry: dict[str, Any] = {"index": i, "name": c.name}
        if c.path is not None and c.path != c.name:
            entry["path"] = c.path
        if c.group is not None:
            entry["group"] = c.group
            groups.setdefault(c.group, []).append(i)
        if c.source_id is not None:
            entry["source_id"] = c.source_id
        entry["counts"] = {name: int(counts[i]) for name, counts in split_counts.items()}
        entries.append(entry)
    doc: dict[str, Any] = {
        "kind": kind,
        "multi_label": multi_label,
        "num_classes": len(classes),
        "splits": {name: int(n) for name, n in split_sizes.items()},
        "names": {str(i): c.name for i, c in enumerate(classes)},
        "classes": entries,
    }
    if groups:
        doc["groups"] = groups
    return doc


def dumps(doc: Mapping[str, Any]) -> str:
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def read_names(path: str | os.PathLike[str]) -> list[str]:
    """Class names by index from a ``classes.json``."""
    name = os.fspath(path)
    try:
        check_regular(name)
        with open(name, encoding="utf-8") as fh:
            doc = json.load(fh)
    except FileNotFoundError:
        raise FormatError("no such classes file", path=name) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise FormatError(f"not a JSON classes file ({exc})", path=name) from None
    except RecursionError:
        raise FormatError("not a JSON classes file (nested too deeply)", path=name) from None
    except OSError as exc:
        raise FormatError(f"cannot read classes file ({exc.strerror})", path=name) from None
    names = doc.get("names") if isinstance(doc, dict) else None
    if not isinstance(names, dict) or set(names) != {str(i) for i in range(len(names))}:
        raise FormatError("'names' must map 0..N-1 to class names", path=name)
    return [str(names[str(i)]) for i in range(len(names))]
