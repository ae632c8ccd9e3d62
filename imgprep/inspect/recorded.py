"""The fingerprints a packed dataset's record keeps (``prepare --dedup``), read instead of decoding.

Each ``.rec`` split whose dataset record lists a fingerprint file is checked against it (size,
SHA-256, rows = records, the record ids the ``.idx`` names in order); when every record split has
one that passes, inspect reads them and decodes no image, so it compares exactly what prepare
compared.  Otherwise it decodes every record as before: a split without the file (a dataset made
by im2rec, ``pack`` or an older imgprep) or with a damaged one.  Either way :func:`attach` returns
the one line that says which, and why.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator

import numpy as np

from imgprep.errors import FormatError, StorageError
from imgprep.formats.dataset import record_folder, record_name
from imgprep.formats.recordio import parse_index
from imgprep.inspect.collect import Split
from imgprep.layout.names import numbered_shard
from imgprep.splits.prints_file import FilePrints, recorded
from imgprep.storage.base import Store


def attach(splits: list[Split], storage: Store) -> str | None:
    """Set ``split.prints`` on every record split when all of them have a good fingerprint file;
    the line saying what inspect does (None: no split is packed)."""
    recs = [s for s in splits if s.rec is not None]
    if not recs:
        return None
    listed = next((s for s in splits if s.rec is None), None)
    if listed is not None:
        return f"fingerprints: decoded every image ({listed.name} is read from {listed.source})"
    found: list[FilePrints] = []
    for split in recs:
        try:
            prints = _prints_of(split, storage)
        except (FormatError, StorageError) as exc:
            where = f"{exc.path}: " if exc.path else ""
            return f"fingerprints: decoded every record ({where}{exc.message})"
        if prints is None:
            return (f"fingerprints: decoded every record ({split.name}: its dataset record keeps none; "
                    "prepare --dedup report or same-split writes them)")
        found.append(prints)
    for split, prints in zip(recs, found, strict=True):
        split.prints = prints
    names = ", ".join(p.uri.rsplit("/", 1)[-1] for p in found)
    return f"fingerprints: read from {names} (as prepare took them; no image decoded)"


def _prints_of(split: Split, storage: Store) -> FilePrints | None:
    rec = split.rec or ""
    numbered = numbered_shard(rec) if split.shards else None
    prefix = numbered[0] if numbered is not None else rec[: -len(".rec")]
    found = recorded(storage, prefix)
    if found is None:
        return None
    record, prints = found
    folder = record_folder(prefix)
    if [folder + shard.rec for shard in record.shards] != split.recs:
        raise FormatError(f"the dataset record lists other shards than the folder holds "
                          f"({len(record.shards)} listed, {len(split.recs)} found)", path=record_name(prefix))
    if not _same_ids(prints, storage, [folder + shard.idx for shard in record.shards]):
        raise FormatError("fingerprint rows name other record ids than the .idx files", path=prints.uri)
    return prints


def _same_ids(prints: FilePrints, storage: Store, idxs: list[str], block: int = 1 << 16) -> bool:
    """The file's ``id`` column is the ``.idx`` files' keys in order, compared a block of lines at a
    time (a million-record index is never held as Python objects)."""
    ids = prints.column("id")
    at = 0
    keys = array("q")
    for idx in idxs:
        for line in _lines(storage, idx):
            if not line.strip():
                continue
            keys.append(parse_index(line, idx)[0][0])
            if len(keys) == block:
                if at + block > len(ids) or not np.array_equal(ids[at: at + block], keys):
                    return False
                at, keys = at + block, array("q")
    return at + len(keys) == len(ids) and np.array_equal(ids[at:], keys)


def _lines(storage: Store, uri: str) -> Iterator[str]:
    """A text file's lines, read a megabyte at a time."""
    carry = b""
    with storage.open_read(uri) as fh:
        while piece := fh.read(1 << 20):
            *whole, carry = (carry + piece).split(b"\n")
            for line in whole:
                yield line.decode("utf-8", errors="replace")
    if carry:
        yield carry.decode("utf-8", errors="replace")
