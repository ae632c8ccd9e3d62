"""imgprep.data: what training code reads, judged by MXNet's reading of the same records."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from data_fixture import CLASSES, digest, payloads, write_shards
from PIL import Image

import imgprep
from imgprep.data import Dataset, Loader, Order, Transform, permutation
from imgprep.data import transforms as T
from imgprep.errors import FormatError, ImageError, UsageError
from imgprep.formats import recordio as rio

COUNT = 60


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> Path:
    """Three numbered shards (25 + 25 + 10 records) of mixed payloads: returns the prefix."""
    prefix = tmp_path_factory.mktemp("data") / "train"
    write_shards(prefix, payloads(COUNT), per_shard=25)
    return prefix


def test_records_labels_and_ids_match_mxnet(shards: Path, mxnet) -> None:
    ds = Dataset(str(shards))
    assert len(ds) == COUNT and ds.label_width == 1
    files = [str(p) for n in range(3) for p in (Path(f"{shards}-{n:05d}.rec"), Path(f"{shards}-{n:05d}.idx"))]
    theirs = [r for shard in mxnet.run("pairs", *files) for r in shard]
    ours = [ds.record(i) for i in range(len(ds))]
    assert [r["id"] for r in theirs] == [rid for rid, _, _ in ours]
    assert [int(r["labels"][0]) for r in theirs] == [label for _, label, _ in ours]
    import hashlib

    assert [r["sha256"] for r in theirs] == [hashlib.sha256(image).hexdigest() for _, _, image in ours]


def _reference_eval(pixels: np.ndarray, size: int, resize: int) -> np.ndarray:
    """torchvision's ``Resize(resize)`` + ``CenterCrop(size)`` on PIL images, written out: shorter
    side to ``resize`` (the longer one truncated), Pillow BILINEAR, offsets rounded."""
    h, w = pixels.shape[:2]
    rw, rh = (resize, int(resize * h / w)) if w <= h else (int(resize * w / h), resize)
    im = Image.fromarray(pixels).resize((rw, rh), Image.Resampling.BILINEAR)
    left, top = round((rw - size) / 2), round((rh - size) / 2)
    return np.asarray(im.crop((left, top, left + size, top + size)))


def test_pixels_match_mxnet_decode_and_a_reference_resize(shards: Path, mxnet) -> None:
    """Whole images equal MXNet's (OpenCV's) decode within rounding, and the eval transform (at a
    size decoded at full scale) equals a full decode + torchvision-style resize + centre crop
    within 0.1 levels on average (see the next test for DCT-scaled decodes)."""
    rec, idx = f"{shards}-00000.rec", f"{shards}-00000.idx"
    theirs = mxnet.run("pixels", rec, idx)
    whole = Dataset(rec)
    crop = Dataset(rec, transform=Transform.eval(48, resize=96))
    for i, ref in enumerate(theirs):
        mx_pixels = np.frombuffer(bytes.fromhex(ref["hex"]), np.uint8).reshape(ref["shape"])
        image, _ = whole[i]
        if i % 23 != 9:  # CMYK: OpenCV and Pillow disagree on Adobe's inverted CMYK; not ours to judge
            assert image.shape == mx_pixels.shape
            assert np.abs(image.astype(int) - mx_pixels).max() <= 2, i
        got, _ = crop[i]
        diff = np.abs(got.astype(int) - _reference_eval(np.asarray(image), 48, 96))
        assert diff.mean() < 0.1, (i, diff.mean())


def _smooth_jpeg(width: int, height: int, seed: int) -> bytes:
    import io

    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    f = rng.uniform(10, 40, 3)
    pixels = np.stack([127 + 100 * np.sin(x / f[0]), 127 + 100 * np.cos(y / f[1]), 127 + 80 * np.sin((x + y) / f[2])],
                      -1).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "JPEG", quality=92)
    return buf.getvalue()


def test_dct_scaled_decodes_stay_close_to_a_full_decode() -> None:
    """Crops at least twice (4×, 8×) the output are decoded at 1/2 (1/4, 1/8) scale: within one
    level on average of Pillow's resize of a full decode, on photo-like (smooth) content."""
    for k, (w, h, size) in enumerate([(200, 160, 48), (640, 480, 64), (900, 700, 56)]):
        data = _smooth_jpeg(w, h, k)
        for transform in (Transform.eval(size, resize=size + 8), Transform.train(size)):
            for seed in range(3):
                out = np.empty((1, *transform.shape), np.uint8)
                assert not T.decode_batch([memoryview(data)], [seed], transform, out)
                reference = T.decode_pillow(data, seed, transform)
                assert np.abs(out[0].astype(int) - reference).mean() < 1.0, (w, transform.mode, seed)


def test_native_and_pillow_paths_agree(shards: Path) -> None:
    """The native crop decode is Pillow's resize of the same box: to rounding without DCT scaling,
    within a few levels with it (the inverse DCT at 1/2 or 1/4 is a different low-pass)."""
    ds = Dataset(f"{shards}-00000.rec")
    for transform, limit in ((Transform.train(112), 0.5), (Transform.eval(80, resize=80), 0.5),
                             (Transform.train(24, layout="CHW"), 6.0)):
        for i in range(len(ds)):
            _, _, image = ds.record(i)
            seed = T.mix(5, 0, i)
            out = np.empty((1, *transform.shape), np.uint8)
            assert not T.decode_batch([image], [seed], transform, out)
            reference = T.decode_pillow(image, seed, transform)
            assert np.abs(out[0].astype(int) - reference).mean() < limit, (transform, i)


def test_native_decode_reports_damage() -> None:
    import imgfactory as fac

    good = fac.jpeg(64, 48, seed=1)
    out = np.empty((3, 8, 8, 3), np.uint8)
    got = T.decode_batch([memoryview(good[:-600]), memoryview(good[:200] + b"\0" * 50), memoryview(good)],
                         [1, 2, 3], Transform.train(8), out)
    assert set(got) == {0, 1} and all(isinstance(e, ImageError) for e in got.values())


def test_transform_boxes_follow_torchvision_ranges() -> None:
    t = Transform.train(224)
    areas, ratios, flips = [], [], 0
    for seed in range(2000):
        (left, top, r, b), flip = t.box(seed, 400, 300)
        assert 0 <= left < r <= 400 and 0 <= top < b <= 300
        areas.append((r - left) * (b - top) / (400 * 300))
        ratios.append((r - left) / (b - top))
        flips += flip
    assert min(areas) > 0.07 and max(areas) <= 1.0 and 0.35 < np.mean(areas) < 0.55
    assert min(ratios) > 0.74 and max(ratios) < 1.34
    assert 900 < flips < 1100
    assert t.box(7, 400, 300) == t.box(7, 400, 300) != t.box(8, 400, 300)
    box, flip = Transform.eval(224, resize=256).box(0, 512, 256)
    assert box == (256 - 112, 16.0, 256 + 112, 240.0) and not flip
    assert Transform.eval(4, resize=5).box(0, 9, 7) == ((1.5, 0.0, 7.5, 4 * 7 / 5), False)


def test_permutation_is_a_seeded_global_shuffle() -> None:
    a, b, c = permutation(1000, 1, 0), permutation(1000, 1, 1), permutation(1000, 2, 0)
    assert sorted(a) == list(range(1000)) and not np.array_equal(a, b) and not np.array_equal(a, c)
    assert np.array_equal(a, permutation(1000, 1, 0))
    assert np.array_equal(permutation(10, 3, 4), [8, 4, 0, 2, 5, 3, 9, 1, 6, 7])  # fixed forever


def _epoch(loader: Loader) -> tuple[list[int], list[str], list[int]]:
    ids, hashes, sizes = [], [], []
    for batch in loader:
        ids += batch.ids.tolist()
        hashes += digest(batch.images)
        sizes.append(len(batch.ids))
    return ids, hashes, sizes


def test_every_record_exactly_once_per_epoch_in_a_new_order(shards: Path) -> None:
    loader = Loader(Dataset(str(shards), transform=Transform.train(16), seed=4), batch_size=8, threads=2)
    first, _, sizes = _epoch(loader)
    second, _, _ = _epoch(loader)
    assert sorted(first) == sorted(second) == [10_000 + i for i in range(COUNT)]
    assert first != second and sizes == [8] * 7 + [4] and len(loader) == 8 and loader.epoch == 2


@pytest.mark.parametrize("layout", ["HWC", "CHW"])
def test_the_same_sequence_for_any_thread_count(shards: Path, layout: str) -> None:
    ds = Dataset(str(shards), transform=Transform.train(20, layout=layout), seed=9)
    runs = [_epoch(Loader(ds, batch_size=7, threads=t, prefetch=1 + t % 3)) for t in (0, 1, 2, 5)]
    runs.append(_epoch(Loader(ds, batch_size=7, threads=2, io_threads=0)))  # reads in the decoding threads
    assert all(run == runs[0] for run in runs)
    batch = next(iter(Loader(ds, batch_size=4, threads=1)))
    assert batch.images.shape == ((4, 20, 20, 3) if layout == "HWC" else (4, 3, 20, 20))
    assert batch.labels.dtype == np.int64 and set(batch.labels.tolist()) <= set(range(CLASSES))


_RESUME = """
import json, sys, hashlib
from imgprep.data import Dataset, Loader, Transform
state = json.loads(sys.argv[2])
ds = Dataset(sys.argv[1], transform=Transform.train(20), seed=9)
loader = Loader(ds, batch_size=7, threads=int(sys.argv[3]))
loader.load_state_dict(state)
out = []
for batch in loader:
    out += [[int(i), hashlib.sha256(im.tobytes()).hexdigest()[:16]] for i, im in zip(batch.ids, batch.images)]
print(json.dumps(out))
"""


def test_resume_mid_epoch_in_a_fresh_process_with_other_threads(shards: Path) -> None:
    ds = Dataset(str(shards), transform=Transform.train(20), seed=9)
    whole = Loader(ds, batch_size=7, threads=2)
    whole.set_epoch(3)
    ids, hashes, _ = _epoch(whole)
    loader = Loader(ds, batch_size=7, threads=2)
    loader.set_epoch(3)
    head = []
    for k, batch in enumerate(loader):
        head += list(zip(batch.ids.tolist(), digest(batch.images)))
        if k == 2:
            break
    state = json.dumps(loader.state_dict())
    assert len(state) < 300
    proc = subprocess.run([sys.executable, "-c", _RESUME, str(shards), state, "5"], capture_output=True, text=True,
                          check=True, timeout=120)
    tail = [tuple(x) for x in json.loads(proc.stdout)]
    assert head + tail == list(zip(ids, hashes))


def test_a_state_from_another_order_is_refused(shards: Path) -> None:
    ds = Dataset(str(shards), transform=Transform.eval(16))
    state = Loader(ds, batch_size=4, seed=1).state_dict()
    with pytest.raises(UsageError, match="seed"):
        Loader(ds, batch_size=4, seed=2).load_state_dict(state)
    with pytest.raises(UsageError, match="not a state"):
        Loader(ds, batch_size=4).load_state_dict({"epoch": 1})


def test_a_state_saved_after_an_epochs_last_batch_resumes_in_the_next_epoch(shards: Path) -> None:
    # A loop `while loader.epoch < EPOCHS` resumed from a checkpoint taken after the last batch of
    # the last epoch must not train one epoch more.
    ds = Dataset(str(shards), transform=Transform.eval(16))
    loader = Loader(ds, batch_size=8, threads=0)
    loader.set_epoch(1)
    for _ in loader:
        state = loader.state_dict()  # taken inside the loop, after each batch
    resumed = Loader(ds, batch_size=8, threads=0)
    resumed.load_state_dict(state)
    assert (resumed.epoch, resumed.position) == (loader.epoch, loader.position) == (2, 0)
    fresh = Loader(ds, batch_size=8, threads=0)
    fresh.set_epoch(2)
    assert [b.ids.tolist() for b in resumed] == [b.ids.tolist() for b in fresh]


@pytest.mark.parametrize("drop_last", [False, True])
def test_ranks_1_to_8_are_disjoint_covering_and_equal(drop_last: bool) -> None:
    for records in (1000, 997, 64):
        for world in range(1, 9):
            shares = [Order(records, 3, True, r, world, 16, drop_last).share(0) for r in range(world)]
            batches = {-(-len(idx) // 16) for idx, _ in shares}
            assert len(batches) == 1  # equal batch counts
            real = np.concatenate([idx[valid] for idx, valid in shares])
            assert len(set(real.tolist())) == len(real)  # disjoint
            if drop_last:
                assert all(len(idx) % 16 == 0 for idx, _ in shares)
                assert len(real) > records - world * 16
            else:
                assert sorted(real.tolist()) == list(range(records))  # covering
                assert sum((~valid).sum() for _, valid in shares) == -(-records // world) * world - records


def test_ranks_through_the_loader(shards: Path) -> None:
    ds = Dataset(str(shards), transform=Transform.eval(16))
    seen, counts = [], set()
    for rank in range(4):
        batches = list(Loader(ds, batch_size=4, rank=rank, world_size=4, threads=1, seed=2))
        counts.add(len(batches))
        seen += [int(i) for b in batches for i, ok in zip(b.ids, b.valid) if ok]
    assert len(counts) == 1 and sorted(seen) == [10_000 + i for i in range(COUNT)]


def test_dataset_record_and_label_width_from_a_pack(tmp_path: Path, imgfactory) -> None:
    images = tmp_path / "images"
    lines = []
    for i in range(12):
        (images / f"c{i % 3}").mkdir(parents=True, exist_ok=True)
        (images / f"c{i % 3}" / f"{i}.jpg").write_bytes(imgfactory.jpeg(60 + i, 50, seed=i))
        lines.append(f"{i}\t{i % 3}\tc{i % 3}/{i}.jpg\n")
    (tmp_path / "train.lst").write_text("".join(lines))
    imgprep.pack(str(tmp_path / "train.lst"), root=str(images), output=str(tmp_path / "out" / "train"),
                 resize=40, shard_records=5, num_workers=1, quiet=True)
    by_record = Dataset(str(tmp_path / "out" / "train.dataset.json"), transform=Transform.eval(32, resize=40))
    by_prefix = Dataset(str(tmp_path / "out" / "train"))
    assert len(by_record) == len(by_prefix) == 12 and len(by_record.index.uris) == 3
    assert sorted(by_record.record(i)[1] for i in range(12)) == sorted(i % 3 for i in range(12))
    assert by_record[0][0].shape == (32, 32, 3)


def test_multi_hot_labels(tmp_path: Path) -> None:
    items = payloads(12)
    write_shards(tmp_path / "multi", items, multi=CLASSES)
    ds = Dataset(str(tmp_path / "multi.rec"), transform=Transform.eval(16))
    assert ds.label_width == CLASSES
    batch = next(iter(Loader(ds, batch_size=12, shuffle=False)))
    assert batch.labels.dtype == np.float32 and batch.labels.shape == (12, CLASSES)
    for (_, label, _), row in zip(items, batch.labels):
        assert row[label] == 1 and row.sum() == 2


def test_the_index_costs_8_bytes_a_record_and_pickles_as_a_mapping(shards: Path) -> None:
    ds = Dataset(str(shards), transform=Transform.eval(16))
    assert ds.index.offsets.nbytes == 8 * COUNT and ds.index.nbytes <= 16 * COUNT + 64
    copy = pickle.loads(pickle.dumps(ds))
    assert isinstance(copy.index.offsets, np.memmap) and copy.index.offsets.filename.startswith("/dev/shm")
    assert np.array_equal(copy[5][0], ds[5][0])


def _corrupt(tmp_path: Path, at: int, data: bytes, what: str) -> tuple[str, int]:
    """Overwrite record ``at`` from byte ``data[0]`` of it with ``data[1:]``; the shard and the offset."""
    items = payloads(8)
    rec = write_shards(tmp_path / what, items)[0]
    offsets = sorted(o for _, o in rio.read_index(rec.with_suffix(".idx")))
    raw = bytearray(rec.read_bytes())
    start = offsets[at] + data[0]
    raw[start : start + len(data) - 1] = data[1:]
    rec.write_bytes(bytes(raw))
    return str(rec), offsets[at]


def test_a_bad_header_names_shard_record_and_byte(tmp_path: Path) -> None:
    rec, offset = _corrupt(tmp_path, 4, bytes([0]) + b"\x00\x00\x00\x00", "badmagic")
    ds = Dataset(rec, transform=Transform.eval(16))
    with pytest.raises(FormatError, match=rf"{rec}: record 4: no RecordIO magic number at byte {offset}"):
        list(Loader(ds, batch_size=4, shuffle=False))


def test_a_bad_jpeg_is_named_or_skipped_and_counted(tmp_path: Path) -> None:
    # Overwrite the middle of record 2's JPEG (after the 8-byte part head and 24-byte image header).
    rec, offset = _corrupt(tmp_path, 2, bytes([8 + 24 + 2]) + b"\xff\xd9" * 40, "badjpeg")
    strict = Dataset(rec, transform=Transform.eval(16))
    with pytest.raises(ImageError, match=rf"{rec}: record 2 at byte {offset}: "):
        list(Loader(strict, batch_size=4, shuffle=False))
    lenient = Loader(Dataset(rec, transform=Transform.eval(16), errors="skip"), batch_size=4, shuffle=False)
    batches = list(lenient)
    assert [len(b.ids) for b in batches] == [3, 4] and lenient.skipped == 1
    assert 10_002 not in np.concatenate([b.ids for b in batches])
    assert [b.images.shape[0] for b in batches] == [3, 4] and [len(b.labels) for b in batches] == [3, 4]


@pytest.mark.parametrize(("label", "why"), [(2.5, "not a class id"), (-1.0, "not a class id"),
                                             (float("nan"), "not a class id"), ([1.0, 0.0], "2 labels")])
def test_a_label_that_is_not_a_class_id_is_an_error(tmp_path: Path, label, why: str) -> None:
    import imgfactory as fac

    with rio.RecordWriter(tmp_path / "x.rec", tmp_path / "x.idx") as writer:
        writer.write(rio.pack_image_record(1, 1, fac.jpeg(20, 20)), 0)
        writer.write(rio.pack_image_record(label, 2, fac.jpeg(20, 20)), 1)
    ds = Dataset(str(tmp_path / "x.rec"))
    assert ds[0][1] == 1
    with pytest.raises(FormatError, match=f"record 1: .*{why}"):
        ds[1]


def test_an_index_pointing_past_the_shard_is_refused(tmp_path: Path) -> None:
    write_shards(tmp_path / "s", payloads(3))
    (tmp_path / "s.idx").write_text("0\t0\n1\t999996\n")
    with pytest.raises(FormatError, match="past the end"):
        Dataset(str(tmp_path / "s.rec"))
    (tmp_path / "s.idx").write_text("0\t0\n1\tabc\n")
    with pytest.raises(FormatError, match=r"s\.idx"):
        Dataset(str(tmp_path / "s.rec"))


@pytest.mark.parametrize("text", ["0\t0\n1\t8\n", "5\t16\r\n3\t0\r\n9\t8", "\n7\t4\n\n2\t0\n\n", "",
                                  "".join(f"{k}\t{4 * k}\n" for k in range(200_000))])
def test_the_index_parser_agrees_with_recordio(text: str) -> None:
    from imgprep.data.index import parse_offsets

    expected = sorted(offset for _, offset in rio.parse_index(text))
    assert parse_offsets(text.encode(), "x.idx").tolist() == expected


@pytest.mark.parametrize(("text", "why"), [("0\t0\n0\t8\n", "duplicate key 0"), ("0\t0\n1 8\n", ":2: expected"),
                                           ("0\t0\n1\t6\n", "not a 4-byte-aligned"), ("0\t0\n1\t-8\n", ":2: expected"),
                                           ("0\t0\n1\t0\n", "same offset"), ("1\t" + "9" * 19 + "\n", "18 digits")])
def test_the_index_parser_names_the_problem(text: str, why: str) -> None:
    from imgprep.data.index import parse_offsets

    with pytest.raises(FormatError, match=why):
        parse_offsets(text.encode(), "x.idx")


def test_usage_errors() -> None:
    with pytest.raises(UsageError, match="layout"):
        Transform.train(224, layout="NHWC")
    with pytest.raises(UsageError, match="smaller than the crop"):
        Transform.eval(224, resize=200)
    with pytest.raises(UsageError, match="rank"):
        Order(10, rank=3, world_size=2)
