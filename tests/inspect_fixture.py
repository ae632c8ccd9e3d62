"""A two-split dataset with planted copies of training images in val: the inspect tests' data."""

from __future__ import annotations

import io
import json
from pathlib import Path

import imgfactory
from PIL import Image, ImageOps

from imgprep.formats import recordio
from imgprep.formats.lst import LstItem, dumps

CLASSES = ("cat", "dog", "owl")
TRAIN, VAL = 24, 9
PLANTED = {  # val id -> (train id, how it was copied)
    1000: (3, "exact"),
    1001: (4, "resized to 80%"),
    1002: (5, "re-encoded at q70"),
    1003: (6, "mirrored"),
    1004: (7, "cropped by 5%"),
}


def _jpeg(img: Image.Image, quality: int = 90) -> bytes:
    out = io.BytesIO()
    img.save(out, "JPEG", quality=quality)
    return out.getvalue()


def _copy(original: Image.Image, how: str) -> bytes:
    w, h = original.size
    if how == "resized to 80%":
        return _jpeg(original.resize((w * 4 // 5, h * 4 // 5), Image.BILINEAR))
    if how == "re-encoded at q70":
        return _jpeg(original, 70)
    if how == "mirrored":
        return _jpeg(ImageOps.mirror(original))
    if how == "cropped by 5%":
        dx, dy = w * 5 // 200, h * 5 // 200
        return _jpeg(original.crop((dx, dy, w - dx, h - dy)))
    raise ValueError(how)


def _write(folder: Path, name: str, entries: list[tuple[int, int, bytes]]) -> None:
    with recordio.RecordWriter(folder / f"{name}.rec", folder / f"{name}.idx") as writer:
        for id, label, data in entries:
            writer.write(recordio.pack_image_record(float(label), id, data), key=id)
    items = [LstItem(id, (float(label),), f"{CLASSES[label]}/{id:04d}.jpg") for id, label, _ in entries]
    (folder / f"{name}.lst").write_text(dumps(items))


def build(folder: Path) -> Path:
    """``folder`` with train.rec/.lst, val.rec/.lst and classes.json; val holds the planted copies."""
    folder.mkdir(parents=True, exist_ok=True)
    photos = {i: imgfactory.photo(160, 120, seed=i) for i in range(TRAIN)}
    train = [(i, i % len(CLASSES), _jpeg(photos[i])) for i in range(TRAIN)]
    val = [(500 + i, i % len(CLASSES), _jpeg(imgfactory.photo(160, 120, seed=500 + i))) for i in range(VAL)]
    for id, (source, how) in PLANTED.items():
        data = train[source][2] if how == "exact" else _copy(photos[source], how)
        val.append((id, source % len(CLASSES), data))
    _write(folder, "train", train)
    _write(folder, "val", val)
    names = {str(i): n for i, n in enumerate(CLASSES)}
    (folder / "classes.json").write_text(json.dumps({"num_classes": len(CLASSES), "names": names}))
    return folder
