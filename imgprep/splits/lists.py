"""``.lst`` files read from and written to storage (local or ``s3://``); the format itself is
:mod:`imgprep.formats.lst`, which parses and prints text and does no I/O of its own here."""

from __future__ import annotations

import io
import os
from collections.abc import Iterable

from imgprep.errors import FormatError
from imgprep.formats.lst import LstItem, dumps, parse_lines
from imgprep.storage.base import Store


def _storage(storage: Store | None) -> Store:
    if storage is not None:
        return storage
    from imgprep.storage.stores import Storage

    return Storage()


def read_list(uri: str | os.PathLike[str], storage: Store | None = None) -> list[LstItem]:
    """Read and validate one ``.lst`` (local path or ``s3://``)."""
    name = os.fspath(uri)
    data = _storage(storage).read_bytes(name)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FormatError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", path=name) from None
    return list(parse_lines(io.StringIO(text, newline=""), path=name))


def read_lists(uris: Iterable[str | os.PathLike[str]], storage: Store | None = None) -> list[LstItem]:
    """Read several lists into one, refusing indices that repeat across them."""
    store = _storage(storage)
    items: list[LstItem] = []
    seen: dict[int, str] = {}
    for uri in uris:
        name = os.fspath(uri)
        for item in read_list(name, store):
            if item.index in seen:
                raise FormatError(f"index {item.index} also appears in {seen[item.index]}", path=name)
            seen[item.index] = name
            items.append(item)
    return items


def write_lst(uri: str | os.PathLike[str], items: Iterable[LstItem], storage: Store | None = None) -> None:
    """Write a ``.lst`` atomically (local: temporary name then rename; S3: one PUT)."""
    _storage(storage).write_text(os.fspath(uri), dumps(items))
