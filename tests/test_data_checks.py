"""imgprep.data refuses what is wrong (labels, checksums, pixel bombs, a republished dataset) and
shows pass-through pixels as pack makes them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import imgfactory as fac
import numpy as np
import pytest
from PIL import Image

import imgprep
from imgprep.data import Dataset, Loader, Transform
from imgprep.errors import ChangedError, FormatError, ImageError, UsageError
from imgprep.formats import recordio as rio
from imgprep.formats.checksums import RecordChecksumError
from imgprep.formats.lst import LstItem


def _write(path: Path, labels: list) -> tuple[str, list[int]]:
    """``path`` (.rec + .idx) with one small JPEG per label; the record offsets."""
    offsets = []
    with rio.RecordWriter(path, path.with_suffix(".idx")) as writer:
        for key, label in enumerate(labels):
            offsets.append(writer.write(rio.pack_image_record(label, 100 + key, fac.jpeg(24, 20, seed=key)), key))
    return str(path), offsets


def _pack(tmp_path: Path, name: str, files: dict[str, bytes], labels: list[int], **options) -> Path:
    """``files`` packed with ``labels`` into ``tmp_path/out/name``; the prefix."""
    root = tmp_path / "images"
    root.mkdir(exist_ok=True)
    items = []
    for key, ((file, data), label) in enumerate(zip(files.items(), labels)):
        (root / file).write_bytes(data)
        items.append(LstItem(key, (float(label),), file))
    prefix = tmp_path / "out" / name
    imgprep.pack(items, root=str(root), output=str(prefix), num_workers=1, quiet=True, **options)
    return prefix


# --------------------------------------------------------------------------- labels


def test_a_label_outside_num_classes_names_shard_record_and_byte(tmp_path: Path) -> None:
    rec, offsets = _write(tmp_path / "x.rec", [0, 2, 25, 1])
    unknown = Dataset(rec)
    assert unknown.num_classes is None and "num_classes=unknown" in repr(unknown)
    assert unknown.num_classes_unknown == ("no dataset record (shards another tool wrote): "
                                           "pass Dataset(..., num_classes=N)")
    assert unknown.record(2)[1] == 25  # nothing says 25 is wrong: nothing is guessed
    ds = Dataset(rec, num_classes=3, transform=Transform.eval(16))
    assert ds.num_classes == 3 and ds[1][1] == 2
    with pytest.raises(FormatError, match=rf"^{rec}: record 2: record at byte {offsets[2]} \(id 102\) has label 25, "
                                          r"not a class id in 0\.\.2$"):
        ds[2]
    skip = Loader(Dataset(rec, num_classes=3, transform=Transform.eval(16), errors="skip"), batch_size=4,
                  shuffle=False)
    batches = list(skip)
    assert skip.skipped == 1 and batches[0].labels.tolist() == [0, 2, 1]


def test_num_classes_comes_from_the_dataset_record_and_a_conflict_is_refused(tmp_path: Path) -> None:
    prefix = _pack(tmp_path, "train", {f"{i}.jpg": fac.jpeg(30, 30, seed=i) for i in range(4)}, [0, 1, 2, 25])
    record_path = Path(f"{prefix}.dataset.json")
    doc = json.loads(record_path.read_text())
    doc["num_classes"] = 3  # what every writer puts there (issue 28, item 1)
    record_path.write_text(json.dumps(doc))
    ds = Dataset(str(prefix))
    assert ds.num_classes == 3
    with pytest.raises(FormatError, match=r"record 3: .* has label 25, not a class id in 0\.\.2"):
        ds[3]
    with pytest.raises(UsageError, match="num_classes=5 but the dataset record says 3"):
        Dataset(str(prefix), num_classes=5)
    for bad in (0, "twenty", 2.5, True):
        with pytest.raises(UsageError, match=rf"num_classes={bad!r} must be a positive integer"):
            Dataset(str(prefix), num_classes=bad)


@pytest.mark.parametrize(("value", "shown"), [(float("nan"), "nan"), (7.0, "7"), (0.5, "0.5"), (-1.0, "-1")])
def test_a_multi_hot_value_other_than_0_or_1_is_refused(tmp_path: Path, value: float, shown: str) -> None:
    rec, offsets = _write(tmp_path / "m.rec", [[1.0, 0.0, 1.0], [0.0, value, 1.0], [0.0, 0.0, 1.0]])
    ds = Dataset(rec, transform=Transform.eval(16))
    assert ds.label_width == 3 and ds[0][1].tolist() == [1, 0, 1]
    with pytest.raises(FormatError, match=rf"record 1: record at byte {offsets[1]} \(id 101\) has {shown} at "
                                          r"position 1 of its multi-hot label vector"):
        ds[1]
    skip = Loader(Dataset(rec, transform=Transform.eval(16), errors="skip"), batch_size=3, shuffle=False)
    (batch,) = list(skip)
    assert skip.skipped == 1 and batch.labels.tolist() == [[1, 0, 1], [0, 0, 1]]


# --------------------------------------------------------------------------- checksums


def _flip_quantisation(data: bytearray, start: int) -> None:
    """Change one value of the first JPEG quantisation table after byte ``start``: the image still
    decodes, to other pixels."""
    at = data.index(b"\xff\xdb", start) + 5 + 10
    data[at] ^= 0x01


def test_a_flipped_byte_that_still_decodes_fails_its_checksum(tmp_path: Path) -> None:
    prefix = _pack(tmp_path, "train", {f"{i}.jpg": fac.jpeg(40, 32, seed=i) for i in range(4)}, [0, 1, 0, 1],
                   quality=80)
    before = Dataset(str(prefix))[2][0]
    rec = Path(f"{prefix}.rec")
    offsets = sorted(o for _, o in rio.read_index(Path(f"{prefix}.idx")))
    raw = bytearray(rec.read_bytes())
    _flip_quantisation(raw, offsets[2])
    rec.write_bytes(bytes(raw))
    unchecked = Dataset(str(prefix), checksums=False)
    changed = unchecked[2][0]
    assert changed.shape == before.shape and not np.array_equal(changed, before)  # decodes, to other pixels
    ds = Dataset(str(prefix), transform=Transform.eval(16))
    with pytest.raises(RecordChecksumError, match=rf"^{rec}: record 2: record at byte {offsets[2]}: "
                                                  r"CRC-32 [0-9a-f]{8} differs from the packed record's"):
        ds[2]
    skip = Loader(Dataset(str(prefix), transform=Transform.eval(16), errors="skip"), batch_size=4, shuffle=False)
    (batch,) = list(skip)
    assert skip.skipped == 1 and len(batch.ids) == 3 and 2 not in batch.ids.tolist()


# --------------------------------------------------------------------------- pixel bombs


def _bomb() -> bytes:
    """A small progressive JPEG whose frame header says 20000x20000."""
    data = bytearray(fac.jpeg(64, 64, progressive=True, seed=3))
    sof = data.index(b"\xff\xc2")
    data[sof + 5 : sof + 9] = (20000).to_bytes(2, "big") * 2
    return bytes(data)


_BOMB_CHILD = """
import resource, sys
from imgprep.data import Dataset, Transform
from imgprep.errors import ImageError
ds = Dataset(sys.argv[1], transform=Transform.eval(16))
try:
    ds[0]
    print("DECODED")
except ImageError as exc:
    print("ERROR", exc)
print("RSS", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
"""


def test_a_pixel_bomb_is_refused_from_its_header_in_bounded_memory(tmp_path: Path) -> None:
    bomb = _bomb()
    assert len(bomb) < 4096
    path = tmp_path / "b.rec"
    with rio.RecordWriter(path, tmp_path / "b.idx") as writer:
        writer.write(rio.pack_image_record(0, 7, bomb), 0)
        writer.write(rio.pack_image_record(1, 8, fac.jpeg(32, 32)), 1)
    out = subprocess.run([sys.executable, "-c", _BOMB_CHILD, str(path)], capture_output=True, text=True, timeout=120)
    lines = out.stdout.splitlines()
    assert out.returncode == 0, out.stderr[-2000:]
    assert lines[0] == (f"ERROR {path}: record 0 at byte 0: 20000x20000 image exceeds the decompression-bomb limit "
                        "of 100000000 pixels (raise it with Dataset(max_pixels=...))")
    peak_mb = int(lines[1].split()[1])
    assert peak_mb < 400, f"peak RSS {peak_mb} MB"
    skip = Loader(Dataset(str(path), transform=Transform.eval(16), errors="skip"), batch_size=2, shuffle=False)
    (batch,) = list(skip)
    assert skip.skipped == 1 and batch.ids.tolist() == [8]
    with pytest.raises(ImageError, match="20000x20000"):
        Dataset(str(path))[0]  # whole images: the same check


# --------------------------------------------------------------------------- one generation


def test_a_republish_during_an_epoch_is_an_error_not_new_bytes(tmp_path: Path) -> None:
    files = {f"{i}.jpg": fac.jpeg(30 + i, 30, seed=i) for i in range(12)}
    prefix = _pack(tmp_path, "train", files, [i % 3 for i in range(12)], shard_records=4)
    ds = Dataset(str(prefix), transform=Transform.eval(16))
    # batches of 2: by the first, the loader has read 3 batches ahead at most, so reads remain
    loader = Loader(ds, batch_size=2, shuffle=False, threads=1, prefetch=1)
    it = iter(loader)
    first = next(it)
    assert first.labels.tolist() == [0, 1]
    _pack(tmp_path, "train", {f"n{i}.jpg": fac.jpeg(60, 40, seed=50 + i) for i in range(12)},
          [2 - i % 3 for i in range(12)], shard_records=4)
    with pytest.raises(ChangedError, match=r"the dataset changed while it was read .* open it again"):
        for _ in it:
            pass
    with pytest.raises(ChangedError):
        ds[0]
    assert Dataset(str(prefix))[0][1] == 2  # opened again: the new generation


def test_a_file_rewritten_in_place_is_a_changed_generation(tmp_path: Path) -> None:
    rec, _ = _write(tmp_path / "x.rec", [0, 1, 2])
    ds = Dataset(rec)
    ds[0]
    raw = Path(rec).read_bytes()
    Path(rec).write_bytes(raw + b"\0\0\0\0")  # same inode, other size
    with pytest.raises(ChangedError, match="changed since it was opened"):
        ds[1]


# --------------------------------------------------------------------------- pixels as pack makes them


def _png16() -> bytes:
    ramp = (np.arange(48 * 40, dtype=np.uint32).reshape(40, 48) * 27 % 65536).astype(np.uint16)
    return fac.encode(Image.fromarray(ramp), "PNG")  # mode I;16


def _rgba_png() -> bytes:
    pixels = np.zeros((20, 24, 4), np.uint8)
    pixels[..., 0], pixels[..., 3] = 200, np.arange(24, dtype=np.uint8) * 10
    return fac.encode(Image.fromarray(pixels, "RGBA"), "PNG")


def _palette_png() -> bytes:
    im = Image.new("P", (16, 16), 1)
    im.putpalette([0, 0, 0, 10, 200, 30] + [0] * 762)
    im.paste(0, (0, 0, 8, 16))
    return fac.encode(im, "PNG", transparency=0)


@pytest.mark.parametrize("make", [_png16, _rgba_png, _palette_png], ids=["16-bit", "alpha", "palette"])
def test_pass_through_pngs_read_as_pack_converts_them(tmp_path: Path, make) -> None:
    files = {"a.png": make()}
    raw = Dataset(str(_pack(tmp_path, "raw", files, [0], pass_through=True)))
    packed = Dataset(str(_pack(tmp_path, "packed", files, [0], encoding="png")))
    expected = packed[0][0]
    assert expected.max() > 0 and np.array_equal(raw[0][0], expected)
    crop = Transform.eval(12, resize=16)
    with_crop = Dataset(str(raw.path), transform=crop)
    assert np.array_equal(with_crop[0][0], Dataset(str(packed.path), transform=crop)[0][0])


def _exif_jpeg(orientation: int) -> bytes:
    im = Image.new("RGB", (60, 30), (250, 250, 250))
    im.paste((200, 20, 20), (0, 0, 20, 30))  # a red band on the left of the stored pixels
    exif = Image.Exif()
    exif[0x0112] = orientation
    return fac.encode(im, "JPEG", quality=95, exif=exif.tobytes())


@pytest.mark.parametrize("transform", [None, Transform.eval(16, resize=20)], ids=["whole", "eval"])
def test_an_exif_rotated_pass_through_photo_comes_out_upright(tmp_path: Path, transform) -> None:
    files = {"r.jpg": _exif_jpeg(6)}  # 6: turn 90 degrees clockwise to show it
    raw = Dataset(str(_pack(tmp_path, "raw", files, [0], pass_through=True)), transform=transform)
    packed = Dataset(str(_pack(tmp_path, "packed", files, [0], encoding="png")), transform=transform)
    image = raw[0][0]
    if transform is None:
        assert image.shape == (60, 30, 3)  # upright: taller than wide
        assert image[:10, :, 1].mean() < 100 and image[-10:, :, 1].mean() > 200  # the band is now on top
    assert image.shape == packed[0][0].shape
    assert np.abs(image.astype(int) - packed[0][0].astype(int)).mean() < 4


def test_one_shard_of_a_sharded_pack_is_checked_as_its_dataset_record_says(tmp_path: Path) -> None:
    """Opened on its own, ``train-00001.rec`` is still the recorded dataset's shard: its records'
    checksums and the classes are checked (before, it read as "shards another tool wrote")."""
    prefix = _pack(tmp_path, "train", {f"{i}.jpg": fac.jpeg(40, 32, seed=i) for i in range(6)}, [0, 1, 0, 1, 1, 0],
                   quality=80, shard_records=3, num_classes=2)
    shard = Path(f"{prefix}-00001.rec")
    one = Dataset(str(shard))
    assert len(one) == 3 and one.num_classes == 2 and one.num_classes_unknown is None
    offsets = sorted(o for _, o in rio.read_index(shard.with_suffix(".idx")))
    raw = bytearray(shard.read_bytes())
    _flip_quantisation(raw, offsets[1])
    shard.write_bytes(bytes(raw))
    with pytest.raises(RecordChecksumError, match=rf"^{shard}: record 1: record at byte {offsets[1]}: CRC-32"):
        Dataset(str(shard), transform=Transform.eval(16))[1]
