"""What a pack's dataset record says about its classes, and the labels held to it before any image is read.

A reader with ``num_classes`` refuses a label outside the classes; without it a record labelled
25 in a 3-class dataset reaches training as class 25.  So every pack states it: given
(``--num-classes``; ``prepare`` passes the dataset's classes), or read from the ``classes.json``
beside the first list (what ``convert`` writes there), or — when neither exists — ``null`` with
the reason in the record (:mod:`imgprep.formats.dataset`).  Known classes are then held to the
list: a label outside them fails the run in one line before the output is touched.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass

from imgprep.errors import FormatError, UsageError
from imgprep.formats.lst import LstItem
from imgprep.layout.prepared import CLASSES as CLASSES_FILE
from imgprep.storage.base import Store, join


@dataclass(frozen=True)
class Classes:
    """``num_classes`` (None: unknown, and ``unknown`` says why), and the names when known."""

    number: int | None
    names: tuple[str, ...] | None = None
    unknown: str | None = None
    source: str = ""  # where they came from, for messages


def find(items: Collection[LstItem], given: int | None, names: tuple[str, ...] | None, storage: Store) -> Classes:
    """The classes of a pack of ``items``: ``given`` (with ``names``) wins; else the ``classes.json``
    beside the first list file (a :class:`ListStream`'s ``uris``); else unknown, with the reason."""
    if names is not None and given is not None and len(names) != given:
        raise UsageError(f"{len(names)} class names for num_classes {given}")
    if given is not None:
        return Classes(given, names, source="--num-classes")
    if names is not None:  # names alone say how many classes there are
        return Classes(len(names), names, source="class_names")
    uris = getattr(items, "uris", None)
    if not uris:
        return Classes(None, unknown="a list given in Python and no num_classes")
    return beside(uris[0], storage)


def beside(list_uri: str, storage: Store) -> Classes:
    """The classes of the ``classes.json`` beside the list ``list_uri``, or unknown with the reason."""
    uri = join(list_uri.rsplit("/", 1)[0] if "/" in list_uri else ".", CLASSES_FILE)
    if not storage.is_file(uri):
        return Classes(None, unknown=f"no {CLASSES_FILE} beside {list_uri} and no --num-classes")
    found = _read_names(storage.read_bytes(uri), uri)
    return Classes(len(found), found, source=uri)


def _read_names(raw: bytes, uri: str) -> tuple[str, ...]:
    """Class names by index from ``classes.json`` text (its ``names``, 0..N-1)."""
    try:
        doc = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise FormatError(f"not a JSON classes file ({exc})", path=uri) from None
    names = doc.get("names") if isinstance(doc, dict) else None
    if not isinstance(names, dict) or not names or set(names) != {str(i) for i in range(len(names))}:
        raise FormatError("'names' must map 0..N-1 to class names", path=uri)
    return tuple(str(names[str(i)]) for i in range(len(names)))


def check_labels(items: Collection[LstItem], classes: Classes, width: int) -> None:
    """Every class id of the list in ``[0, num_classes)``; a multi-hot vector as wide as the
    classes.  One pass over the list (no image is read): the first bad entry, in one line."""
    number = classes.number
    if number is None:
        return
    if width > 1 and width != number:
        raise UsageError(f"the list's label vectors hold {width} values, but {classes.source} says "
                         f"{number} classes")
    uris = getattr(items, "uris", None)
    for item in items:
        if width > 1:  # a multi-hot vector: the reader and verify refuse any other value than 0 or 1
            _check_multi_hot(item, uris)
            continue
        label = item.labels[0]
        if not (0 <= label < number and label == int(label)):
            raise UsageError(f"entry {item.index} ({item.path}) has label {label:g}, not a class id in "
                             f"0..{number - 1} ({number} classes, from {classes.source})",
                             path=",".join(uris) if uris else None)


def _check_multi_hot(item: LstItem, uris: list[str] | None) -> None:
    for position, value in enumerate(item.labels):
        if value not in (0.0, 1.0):
            raise UsageError(f"entry {item.index} ({item.path}) has {value:g} at position {position} of its multi-hot "
                             "label vector (only 0 and 1 are allowed)", path=",".join(uris) if uris else None)
