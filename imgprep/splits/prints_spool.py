"""Writing fingerprint files (:mod:`imgprep.formats.prints`) a block of rows at a time.

The pack's one writer hands each chunk's rows here in record order (fingerprinted by the pack
workers, or picked from the pass before the pack); ``--dedup same-split``'s pass spools its rows
here in image order (:class:`SpooledPrints`).  Rows go straight to one spool file per column on
local disk, so memory stays flat however large the dataset; at the end the columns are copied
behind their header into one file under its final name (temporary name and rename, or one
upload), before the dataset record that lists it is written.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import tempfile
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from imgprep.formats.dataset import PrintsEntry
from imgprep.formats.prints import ALIGN, layout
from imgprep.imaging.phash import KIND, ROW_PYTHON
from imgprep.splits.dedup import Measured, Prints
from imgprep.storage.base import Store

# Beside the fingerprint: what inspect shows per image without decoding it, and the record id
# that maps a row back to its list entry.
EXTRAS = (("id", "q"), ("width", "I"), ("height", "I"), ("channels", "B"))


def columns() -> list[tuple[str, str]]:
    """``(name, typecode)`` of every column written: the fingerprint's, whatever they are, then the extras."""
    blank = Prints()
    return [(f.name, getattr(blank, f.name).typecode) for f in dataclasses.fields(Prints)] + list(EXTRAS)


@dataclass
class PrintBlock:
    """Fingerprint rows with what inspect shows of each image (the :data:`EXTRAS` but the record id,
    which the writer knows): columns, cheap to send from a pack worker to the writer."""

    prints: Prints = field(default_factory=Prints)
    extras: dict[str, array] = field(default_factory=lambda: {n: array(t) for n, t in EXTRAS if n != "id"})

    def add(self, row: Measured | None) -> None:
        self.prints.add(row)
        for name, col in self.extras.items():
            col.append(0 if row is None else int(getattr(row, name)))

    def extend_rows(self, rows: np.ndarray) -> None:
        """Native rows (:data:`~imgprep.imaging.phash.ROW`), none left to Python."""
        self.prints.extend_rows(rows)
        for name, col in self.extras.items():
            col.frombytes(rows[name].astype(np.dtype(col.typecode)).tobytes())

    def __len__(self) -> int:
        return len(self.prints)


def block_of(rows: np.ndarray, measure: Callable[[int], Measured | None]) -> PrintBlock:
    """The block of native rows, each one the core left to Python (``ROW_PYTHON``) measured by
    ``measure(row number)`` instead, in order."""
    block = PrintBlock()
    start = 0
    for i in np.flatnonzero(rows["outcome"] == ROW_PYTHON).tolist():
        block.extend_rows(rows[start:i])
        block.add(measure(i))
        start = i + 1
    block.extend_rows(rows[start:])
    return block


class PrintsSpool:
    """Rows appended in record order, one spool file per column."""

    def __init__(self) -> None:
        self.folder = tempfile.mkdtemp(prefix="imgprep-prints-")
        self.columns = columns()
        self.files = {name: open(os.path.join(self.folder, name), "wb") for name, _ in self.columns}  # noqa: SIM115
        self.counts = dict.fromkeys(self.files, 0)
        self.rows = 0

    def add(self, rows: Sequence[Measured | None], ids: Sequence[int]) -> None:
        """Append rows (None: the stored image could not be fingerprinted) of records ``ids``."""
        block = PrintBlock()
        for row in rows:
            block.add(row)
        self.add_rows(block, ids)

    def add_rows(self, block: PrintBlock, ids: Sequence[int]) -> None:
        """Append a block of rows of records ``ids``."""
        self.add_block(block.prints, {"id": array("q", ids), **block.extras})

    def add_block(self, block: Prints, extras: dict[str, array]) -> None:
        """Append a block of rows given as columns (``extras``: one array per :data:`EXTRAS` column)."""
        for f in dataclasses.fields(Prints):
            col = getattr(block, f.name)
            if f.name.endswith("_row") and self.rows:  # row numbers are the file's, not the block's
                col = array(col.typecode, (r + self.rows for r in col))
            self._write(f.name, col)
        for name, _ in EXTRAS:
            self._write(name, extras[name])
        self.rows += len(block)

    def add_columns(self, columns: dict[str, Any], rows: int) -> None:
        """Append ``rows`` rows given as whole columns, as :func:`imgprep.splits.prints_file.pick`
        returns them (row-number columns counted from the block's first row)."""
        for name, typecode in self.columns:
            col = np.asarray(columns[name]).astype(np.dtype(typecode), copy=False)
            if name.endswith("_row") and self.rows:
                col = col + self.rows
            self._write(name, col)
        self.rows += rows

    def _write(self, name: str, col: Any) -> None:
        if len(col):
            self.files[name].write(col.tobytes())
            self.counts[name] += len(col)

    def publish(self, storage: Store, uri: str) -> PrintsEntry:
        """Write the file at ``uri`` whole (or not at all) and say how the dataset record lists it."""
        for fh in self.files.values():
            fh.close()
        head, header = layout(self.rows, [(n, t, self.counts[n]) for n, t in self.columns], KIND)
        digest = hashlib.sha256(head)
        with storage.open_output(uri, expected_size=header.size) as out:
            out.write(head)
            for column in header.columns:
                with open(os.path.join(self.folder, column.name), "rb") as fh:
                    while piece := fh.read(8 << 20):
                        digest.update(piece)
                        out.write(piece)
                pad = b"\0" * (-column.nbytes % ALIGN)
                digest.update(pad)
                out.write(pad)
        return PrintsEntry(uri.rsplit("/", 1)[-1], self.rows, header.size, digest.hexdigest())

    def close(self) -> None:
        for fh in self.files.values():
            fh.close()
        shutil.rmtree(self.folder, ignore_errors=True)




class SpooledPrints(Prints):
    """The columns the duplicate pass builds (:func:`imgprep.splits.dedup.find`), every row also
    spooled in image order with its extras (``id`` = the image's index), so that the pack writes
    exactly these rows (no second fingerprint) and ``inspect`` reads what the split was decided on."""

    FLUSH = 4096

    def __init__(self) -> None:
        super().__init__()
        self.spool = PrintsSpool()
        self.pending: list[Measured | None] = []

    def add(self, measured: Measured | None) -> None:
        super().add(measured)
        self.pending.append(measured)
        if len(self.pending) >= self.FLUSH:
            self.flush()

    def flush(self) -> None:
        start = self.spool.rows
        self.spool.add(self.pending, range(start, start + len(self.pending)))
        self.pending = []

    def publish(self, storage: Store) -> str:
        """The rows as one local fingerprint file (a temporary the caller removes)."""
        self.flush()
        handle, path = tempfile.mkstemp(prefix="imgprep-pass-", suffix=".prints")
        os.close(handle)
        try:
            self.spool.publish(storage, path)
        finally:
            self.spool.close()
        return path
