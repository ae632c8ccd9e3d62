"""Many-class datasets for the inspect page (tests and benchmarks/bench_inspect_html.py): tiny JPEGs,
a few per class, with leaks, label conflicts and groups that are both planted in val.

What is planted (``Planted``): ``leaks`` exact copies of train photos in val under the same class;
``conflicts`` copies of val photos in val under the next class (a conflict, not a leak); ``both``
copies of train photos in val under the next class (a leak and a conflict); and one crowded leak,
a photo five times in train and once in val, whose first members are all train's.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from imgprep.formats import recordio

CROWDED_TRAIN = 5  # copies of the crowded leak's photo in train (more than a card shows)
CROWDED_ID = 900_000  # the crowded leak's val id


@dataclass(frozen=True)
class Planted:
    classes: int
    leaks: int
    conflicts: int
    both: int


def photo(seed: int, size: tuple[int, int] = (48, 40)) -> bytes:
    """A distinct smooth colour field with noise, as a JPEG: random images, so chance near-copies are rare."""
    rng = np.random.default_rng(seed)
    coarse = Image.fromarray(rng.integers(0, 256, (5, 6, 3), dtype=np.uint8), "RGB")
    smooth = np.asarray(coarse.resize(size, Image.BICUBIC), dtype=np.int16)
    noisy = np.clip(smooth + rng.integers(-10, 11, smooth.shape, dtype=np.int16), 0, 255).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(noisy, "RGB").save(out, "JPEG", quality=85)
    return out.getvalue()


def build(folder: Path, classes: int, *, per_class: int = 2, leaks: int | None = None, conflicts: int = 5,
          both: int = 3, size: tuple[int, int] = (48, 40)) -> Planted:
    """train.rec (``per_class`` photos per class) and val.rec (one per class plus the planted copies)."""
    leaks = 3 * classes // 10 + 2 if leaks is None else leaks
    folder.mkdir(parents=True, exist_ok=True)
    n_train = per_class * classes
    train = [(i, i % classes, photo(i, size)) for i in range(n_train)]
    val = [(100_000 + k, k, photo(n_train + k, size)) for k in range(classes)]
    crowded = photo(10 * n_train + 7, size)
    train += [(n_train + j, 0, crowded) for j in range(CROWDED_TRAIN)]
    val.append((CROWDED_ID, 0, crowded))
    val += [(200_000 + j, train[j][1], train[j][2]) for j in range(leaks)]
    val += [(300_000 + j, (j + 1) % classes, val[j][2]) for j in range(conflicts)]
    val += [(400_000 + j, (train[leaks + j][1] + 1) % classes, train[leaks + j][2]) for j in range(both)]
    for name, entries in (("train", train), ("val", val)):
        with recordio.RecordWriter(folder / f"{name}.rec", folder / f"{name}.idx") as writer:
            for id, label, data in entries:
                writer.write(recordio.pack_image_record(float(label), id, data), key=id)
    names = {str(k): f"class {k:04d} " + "x" * (k % 7) for k in range(classes)}
    (folder / "classes.json").write_text(json.dumps({"num_classes": classes, "names": names}))
    return Planted(classes, leaks + 1, conflicts, both)
