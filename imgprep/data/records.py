"""One record's bytes → (id, label, encoded image), with the label checked against the dataset.

Labels come out in one of two shapes, fixed per dataset: a class id (``label_width`` 1: the
header's label, or the one packed label) or a multi-hot vector of the dataset's width (the
``flag`` packed float32 labels).  A record whose labels do not fit that shape, or whose class id
is not a whole number in range, is a :class:`FormatError` naming it: never a wrong label.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

import numpy as np

from imgprep.errors import FormatError
from imgprep.formats.recordio import IR_SIZE, unframe

_HEADER = struct.Struct("<IfQQ")


@dataclass(frozen=True)
class LabelShape:
    width: int  # 1: class ids; N: multi-hot vectors of N
    num_classes: int | None

    def empty(self, n: int) -> np.ndarray:
        return np.zeros(n, np.int64) if self.width == 1 else np.zeros((n, self.width), np.float32)


def parse(buf: bytes | memoryview, offset: int, shape: LabelShape) -> tuple[int, int | np.ndarray, memoryview]:
    """``(id, label, image bytes)`` of the record framed in ``buf`` (found at byte ``offset``)."""
    payload = unframe(buf, offset)
    if len(payload) < IR_SIZE:
        raise FormatError(f"record at byte {offset} holds {len(payload)} bytes, less than an image record header")
    flag, label, rid, _ = _HEADER.unpack_from(payload)
    image = payload[IR_SIZE + 4 * flag :]
    if IR_SIZE + 4 * flag > len(payload):
        raise FormatError(f"record at byte {offset}: its header says {flag} labels but it holds {len(payload)} bytes")
    if shape.width > 1:
        if flag != shape.width:
            raise FormatError(f"record at byte {offset} (id {rid}) has {flag or 1} labels, the dataset {shape.width}")
        return rid, np.frombuffer(payload, "<f4", flag, IR_SIZE).astype(np.float32), image
    if flag > 1:
        raise FormatError(f"record at byte {offset} (id {rid}) has {flag} labels, the dataset one")
    if flag == 1:
        label = struct.unpack_from("<f", payload, IR_SIZE)[0]
    whole = math.isfinite(label) and label >= 0 and label == int(label)
    if not whole or (shape.num_classes is not None and label >= shape.num_classes):
        bound = f" in 0..{shape.num_classes - 1}" if shape.num_classes else ""
        raise FormatError(f"record at byte {offset} (id {rid}) has label {label}, not a class id{bound}")
    return rid, int(label), image


def peek_width(buf: bytes | memoryview, offset: int) -> int:
    """How many labels the record in ``buf`` carries (what a dataset without a record declares)."""
    payload = unframe(buf, offset)
    if len(payload) < IR_SIZE:
        raise FormatError(f"record at byte {offset} holds {len(payload)} bytes, less than an image record header")
    return max(1, _HEADER.unpack_from(payload)[0])
