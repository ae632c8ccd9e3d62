"""One record's bytes → (id, label, encoded image), with the label checked against the dataset.

Labels come out in one of two shapes, fixed per dataset: a class id (``label_width`` 1: the
header's label, or the one packed label) or a multi-hot vector of the dataset's width (the
``flag`` packed float32 labels).  A record whose labels do not fit that shape, whose class id is
not a whole number below ``num_classes``, or whose multi-hot vector holds anything but 0 and 1,
is a :class:`FormatError` naming it: never a wrong label.  The header is read by
:func:`imgprep.formats.recordio.image_header`, the one reading every reader shares.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

import numpy as np

from imgprep.errors import FormatError
from imgprep.formats.recordio import IR_SIZE, image_header, unframe


@dataclass(frozen=True)
class LabelShape:
    width: int  # 1: class ids; N: multi-hot vectors of N
    num_classes: int | None

    def empty(self, n: int) -> np.ndarray:
        return np.zeros(n, np.int64) if self.width == 1 else np.zeros((n, self.width), np.float32)


def parse(buf: bytes | memoryview, offset: int, shape: LabelShape) -> tuple[int, int | np.ndarray, memoryview]:
    """``(id, label, image bytes)`` of the record framed in ``buf`` (found at byte ``offset``)."""
    payload = unframe(buf, offset)
    try:
        header, end = image_header(payload)
    except FormatError as exc:
        raise FormatError(f"record at byte {offset}: {exc.message}") from None
    flag, rid, image = header.flag, header.id, payload[end:]
    if shape.width > 1:
        if flag != shape.width:
            raise FormatError(f"record at byte {offset} (id {rid}) has {flag or 1} labels, the dataset {shape.width}")
        vector = np.frombuffer(payload, "<f4", flag, IR_SIZE).astype(np.float32)
        bad = np.flatnonzero((vector != 0) & (vector != 1))
        if bad.size:
            raise FormatError(f"record at byte {offset} (id {rid}) has {_num(vector[bad[0]])} at position "
                              f"{int(bad[0])} of its multi-hot label vector (only 0 and 1 are allowed)")
        return rid, vector, image
    if flag > 1:
        raise FormatError(f"record at byte {offset} (id {rid}) has {flag} labels, the dataset one")
    label = struct.unpack_from("<f", payload, IR_SIZE)[0] if flag == 1 else header.label
    whole = math.isfinite(label) and label >= 0 and label == int(label)
    if not whole or (shape.num_classes is not None and label >= shape.num_classes):
        bound = f" in 0..{shape.num_classes - 1}" if shape.num_classes else ""
        raise FormatError(f"record at byte {offset} (id {rid}) has label {_num(label)}, not a class id{bound}")
    return rid, int(label), image


def peek_width(buf: bytes | memoryview, offset: int) -> int:
    """How many labels the record in ``buf`` carries (what a dataset without a record declares)."""
    try:
        header, _ = image_header(unframe(buf, offset))
    except FormatError as exc:
        raise FormatError(f"record at byte {offset}: {exc.message}") from None
    return max(1, header.flag)


def _num(value: float) -> str:
    value = float(value)
    return str(int(value)) if math.isfinite(value) and value.is_integer() else repr(value)
