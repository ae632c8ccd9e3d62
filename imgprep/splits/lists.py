"""``.lst`` files read from and written to storage (local or ``s3://``); the format itself is
:mod:`imgprep.formats.lst`, which parses and prints text and does no I/O of its own here."""

from __future__ import annotations

import io
import os
from collections.abc import Iterable

from imgprep.errors import FormatError, reading
from imgprep.formats.lst import LstItem, dumps, parse_lines
from imgprep.storage.base import Store


def read_list(uri: str | os.PathLike[str], storage: Store) -> list[LstItem]:
    """Read and validate one ``.lst`` (local path or ``s3://``)."""
    name = os.fspath(uri)
    # The store refuses a device or FIFO before opening it (/dev/zero would be read forever).
    with reading(name, "list file", expected=".lst file"), storage.open_seekable(name) as fh:
        data = fh.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FormatError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", path=name) from None
    return list(parse_lines(io.StringIO(text, newline=""), path=name))


def read_lists(uris: Iterable[str | os.PathLike[str]], storage: Store) -> list[LstItem]:
    """Read several lists into one, refusing indices that repeat across them."""
    items: list[LstItem] = []
    seen: dict[int, str] = {}
    for uri in uris:
        name = os.fspath(uri)
        for item in read_list(name, storage):
            if item.index in seen:
                raise FormatError(f"index {item.index} also appears in {seen[item.index]}", path=name)
            seen[item.index] = name
            items.append(item)
    return items


def write_lst(uri: str | os.PathLike[str], items: Iterable[LstItem], storage: Store) -> None:
    """Write a ``.lst`` atomically (local: temporary name then rename; S3: one PUT)."""
    storage.write_text(os.fspath(uri), dumps(items))
