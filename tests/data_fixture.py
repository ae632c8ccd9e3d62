"""Small datasets for the imgprep.data tests, written once per session."""

from __future__ import annotations

import hashlib
from pathlib import Path

import imgfactory as fac
import numpy as np

from imgprep.formats import recordio as rio

CLASSES = 5


def payloads(count: int) -> list[tuple[int, int, bytes]]:
    """``(id, label, image)``: mostly colour JPEGs of varied sizes, with grey, progressive, PNG and
    CMYK payloads mixed in (the last three take the Pillow path)."""
    out = []
    for i in range(count):
        w, h = 96 + (i * 13) % 90, 80 + (i * 29) % 70
        if i % 11 == 3:
            image = fac.png(w, h, seed=i)
        elif i % 11 == 5:
            image = fac.jpeg(w, h, mode="L", seed=i)
        elif i % 11 == 7:
            image = fac.jpeg(w, h, progressive=True, seed=i)
        elif i % 23 == 9:
            image = fac.jpeg(w, h, mode="CMYK", seed=i)
        else:
            image = fac.jpeg(w, h, seed=i, quality=92)
        out.append((10_000 + i, i % CLASSES, image))
    return out


def write_shards(prefix: Path, items: list[tuple[int, int, bytes]], per_shard: int | None = None,
                 multi: int = 0) -> list[Path]:
    """``prefix.rec``/``.idx`` (``per_shard`` None) or numbered shards; ``multi`` > 0 packs multi-hot
    labels of that width."""
    recs = []
    groups = [items] if per_shard is None else [items[i : i + per_shard] for i in range(0, len(items), per_shard)]
    for number, group in enumerate(groups):
        rec, idx = rio.shard_names(str(prefix), None if per_shard is None else number)
        with rio.RecordWriter(rec, idx) as writer:
            for key, label, image in group:
                value = [float(label == c or (label + 1) % multi == c) for c in range(multi)] if multi else label
                writer.write(rio.pack_image_record(value, key, image), key)
        recs.append(Path(rec))
    return recs


def digest(images: np.ndarray) -> list[str]:
    return [hashlib.sha256(np.ascontiguousarray(im).tobytes()).hexdigest()[:16] for im in images]
