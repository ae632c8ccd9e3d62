"""The fingerprints prepare's pack workers take of what they store (issue 29.2, 29.4): one
fingerprint per image and no pass before the pack, the same report as that pass gave, a file the
dataset record lists that ``inspect`` reads instead of decoding, refused when it does not match,
and byte-identical for any worker count."""

from __future__ import annotations

import dataclasses
import functools
import json

import dupkinds
import imgfactory
import pytest

from imgprep import plan as plan_mod
from imgprep.api import inspect, prepare
from imgprep.imaging import phash
from imgprep.inspect import scan as scan_mod
from imgprep.splits import dedup

KINDS = ("identical", "re-encoded q30", "resized 50%", "grayscale", "mirrored")


@pytest.fixture(scope="module")
def src(tmp_path_factory):
    """Eight photos per class in two classes, and copies of some (in the other class too)."""
    root = tmp_path_factory.mktemp("prints") / "src"
    for ci, name in enumerate("ab"):
        for i in range(8):
            img = imgfactory.photo(160, 120, seed=ci * 100 + i)
            imgfactory.write(root / name / f"img_{i:03d}.jpg", dupkinds.original(img))
    for k, kind in enumerate(KINDS):
        img = imgfactory.photo(160, 120, seed=k)
        original = (root / "a" / f"img_{k:03d}.jpg").read_bytes()
        imgfactory.write(root / "ab"[k % 2] / f"z_{k}.jpg", dupkinds.copy(img, kind, original))
    return root


def _prepare(src, out, **keywords):
    lines: list[str] = []
    prepare("folders", src, out, split="train=0.5,val=0.5", resize=64, echo=lines.append, **keywords)
    return lines


def _report(lines):
    return [line for line in "\n".join(lines).splitlines() if "duplicates" in line or "leaks" in line
            or "LEAK" in line or "conflicts" in line]


def _counted(monkeypatch, module, name):
    calls = []
    real = getattr(module, name)

    def counting(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, counting)
    return calls


def test_prepare_report_fingerprints_each_stored_image_once_and_no_pass_before_the_pack(src, tmp_path, monkeypatch):
    passes = _counted(monkeypatch, dedup, "find")
    batches = _counted(monkeypatch, phash, "record_rows")
    measured = _counted(monkeypatch, dedup, "measure")
    lines = _prepare(src, tmp_path / "out", num_workers=1)
    images = sum(1 for _ in src.rglob("*.jpg"))
    assert passes == []  # no duplicate pass reading the sources before the pack
    assert sum(sum(1 for size in args[1] if size) for args in batches) == images  # one row per stored record
    assert measured == []  # every one in the chunks' native calls: none measured one at a time
    assert all(max(args[1]) < 10_000 for args in batches)  # the small stored records, not the sources
    assert "duplicates: " in "\n".join(lines)


def test_report_equals_the_pass_before_the_pack(src, tmp_path, monkeypatch):
    _prepare(src, tmp_path / "new", dedup_report=str(tmp_path / "new.jsonl"))
    new = _report(_prepare(src, tmp_path / "new2"))
    monkeypatch.setattr(plan_mod, "plan_prepare", functools.partial(plan_mod.plan_prepare, in_pack=False))
    old_lines = _prepare(src, tmp_path / "old", dedup_report=str(tmp_path / "old.jsonl"))
    old = _report(old_lines)
    assert new and new == old
    report = (tmp_path / "new.jsonl").read_text()
    assert report and report == (tmp_path / "old.jsonl").read_text()
    assert len(report.splitlines()) >= 3  # the planted copies were found


@pytest.fixture(scope="module")
def same_split(src, tmp_path_factory):
    out = tmp_path_factory.mktemp("same") / "out"
    prepare("folders", src, out, split="train=0.5,val=0.5", resize=64, dedup="same-split", echo=lambda s: None)
    return out


def test_inspect_of_a_same_split_output_reads_the_recorded_fingerprints_and_finds_no_leak(same_split, monkeypatch):
    measured = _counted(monkeypatch, scan_mod, "measure")
    findings = inspect(same_split)
    assert measured == []  # no record decoded
    assert findings.summary.leaks == 0 and findings.summary.groups >= 3
    assert findings.collection.notes == ["fingerprints: read from train.prints, val.prints (as prepare took them; "
                                         "no image decoded)"]
    record = json.loads((same_split / "train.dataset.json").read_text())
    assert record["fingerprints"]["name"] == "train.prints" and record["fingerprints"]["rows"] == record["records"]


def test_every_fingerprint_column_is_in_the_file(same_split):
    from imgprep.formats.prints import parse

    data = (same_split / "train.prints").read_bytes()
    header = parse(data[:1 << 16], "train.prints", len(data))
    names = {c.name for c in header.columns}
    assert {f.name for f in dataclasses.fields(dedup.Prints)} <= names
    assert {"id", "width", "height", "channels"} <= names


def test_inspect_without_the_file_decodes_and_says_so(src, same_split, tmp_path, monkeypatch):
    from imgprep.api import pack

    out = tmp_path / "packed"
    pack([same_split / "train.lst"], src, out / "train", resize=64)
    measured = _counted(monkeypatch, scan_mod, "measure")
    findings = inspect(out)
    assert len(measured) == findings.table.__len__() > 0
    assert len(findings.collection.notes) == 1
    assert findings.collection.notes[0].startswith("fingerprints: decoded every record (train: its dataset record "
                                                   "keeps none")


@pytest.mark.parametrize("damage", ["flipped", "swapped"])
def test_a_damaged_or_other_fingerprint_file_is_refused_in_one_line_and_inspect_decodes(same_split, tmp_path, damage,
                                                                                        monkeypatch):
    import shutil

    out = tmp_path / "copy"
    shutil.copytree(same_split, out)
    target = out / "train.prints"
    if damage == "flipped":
        data = bytearray(target.read_bytes())
        data[-9] ^= 0x40
        target.write_bytes(bytes(data))
    else:
        target.write_bytes((out / "val.prints").read_bytes())
    good = inspect(same_split)
    measured = _counted(monkeypatch, scan_mod, "measure")
    findings = inspect(out)
    assert measured  # it fell back to decoding every record
    (note,) = findings.collection.notes
    assert note.startswith(f"fingerprints: decoded every record ({target}: ")
    assert ("SHA-256" in note) if damage == "flipped" else ("bytes" in note or "SHA-256" in note)
    assert "\n" not in note
    assert findings.summary == good.summary  # the same answer, decoded


def test_fingerprints_of_another_definition_are_refused_and_inspect_decodes(same_split, tmp_path, monkeypatch):
    """Rows hashed by another definition of the fingerprint (an older imgprep's) are not comparable with
    what inspect would hash: the file names its kind, and a file of another kind is not read."""
    import hashlib
    import shutil

    from imgprep.imaging import phash

    out = tmp_path / "copy"
    shutil.copytree(same_split, out)
    assert f'"kind":"{phash.KIND}"'.encode() in (out / "train.prints").read_bytes()[:4096]
    monkeypatch.setattr(phash, "KIND", "phash64-some-later-definition")
    monkeypatch.setattr("imgprep.splits.prints_file.KIND", phash.KIND)  # what this reader computes
    findings = inspect(out)
    (note,) = findings.collection.notes
    assert "fingerprints of another kind" in note and note.startswith("fingerprints: decoded every record")
    record = json.loads((out / "train.dataset.json").read_text())
    assert record["fingerprints"]["sha256"] == hashlib.sha256((out / "train.prints").read_bytes()).hexdigest()


def test_the_file_carries_each_box_s_chroma_word(same_split):
    """The chroma words (whole image, windows, alternates) travel in the file as the checks do."""
    from imgprep.splits.prints_file import local_prints
    from imgprep.storage.stores import Storage

    prints = local_prints(str(same_split / "train.prints"), Storage())
    chroma, windows = prints.column("chroma"), prints.column("window_chroma")
    assert chroma.dtype.itemsize == 4 and len(windows) == dedup.WINDOWS * len(prints)
    assert (chroma != 0xFFFFFFFF).any() and len(prints.column("alt_chroma")) == len(prints.column("alt_row"))


def test_outputs_and_fingerprints_are_byte_identical_for_one_and_two_workers(src, tmp_path):
    _prepare(src, tmp_path / "one", num_workers=1)
    _prepare(src, tmp_path / "two", num_workers=2, executor="thread")
    one = {p.name: p.read_bytes() for p in (tmp_path / "one").iterdir()}
    two = {p.name: p.read_bytes() for p in (tmp_path / "two").iterdir()}
    assert "train.prints" in one and one == two


def test_inspect_progress_lines_carry_the_total(same_split, imgprep_cli):
    done = imgprep_cli("inspect", same_split, "--progress")
    records = sum(json.loads((same_split / f"{s}.dataset.json").read_text())["records"] for s in ("train", "val"))
    last = [line for line in done.stderr.splitlines() if line.startswith("imgprep: inspect: ")][-1]
    assert last.startswith(f"imgprep: inspect: {records}/{records} img (100%)")


def test_rows_picked_from_interleaved_parts_rebuild_the_file_byte_for_byte(same_split, tmp_path):
    """What the Processing join does with parts packed by several hosts (ShardedByS3Key interleaves them)."""
    import numpy as np

    from imgprep.splits.prints_file import local_prints, pick
    from imgprep.splits.prints_spool import PrintsSpool
    from imgprep.storage.stores import Storage

    storage = Storage()
    whole = local_prints(str(same_split / "train.prints"), storage)
    rows = np.arange(len(whole))
    parts = []
    for k in range(2):  # part k holds rows k, k+2, k+4, ... in order
        spool = PrintsSpool()
        mine = rows[rows % 2 == k]
        spool.add_columns(pick([whole], np.zeros(len(mine), np.int64), mine), len(mine))
        spool.publish(storage, str(tmp_path / f"part{k}.prints"))
        spool.close()
        parts.append(local_prints(str(tmp_path / f"part{k}.prints"), storage))
    assert len(whole.column("alt_row")) > 0  # the row-number columns are exercised
    spool = PrintsSpool()
    spool.add_columns(pick(parts, rows % 2, rows // 2), len(rows))
    spool.publish(storage, str(tmp_path / "joined.prints"))
    spool.close()
    assert (tmp_path / "joined.prints").read_bytes() == (same_split / "train.prints").read_bytes()


def test_same_split_writes_the_rows_its_split_was_decided_on_without_fingerprinting_again(src, tmp_path,
                                                                                        monkeypatch):
    measured = _counted(monkeypatch, dedup, "measure")
    prepare("folders", src, tmp_path / "out", split="train=0.5,val=0.5", resize=64, dedup="same-split",
            num_workers=1, echo=lambda s: None)
    images = sum(1 for _ in src.rglob("*.jpg"))
    assert len(measured) == images  # the pass before the pack, and nothing more
    records = sum(json.loads((tmp_path / "out" / f"{s}.dataset.json").read_text())["fingerprints"]["rows"]
                  for s in ("train", "val"))
    assert records == images
    assert not list(tmp_path.glob("imgprep-pass-*"))



def test_crop_windows_searched_a_block_of_rows_at_a_time_give_the_same_groups(same_split, monkeypatch):
    """What keeps inspect's memory down at ImageNet size: the windows' columns are held (mapped) a
    block of rows at a time; the groups must not depend on the block."""
    import numpy as np

    from imgprep.splits.prints_file import JoinedPrints, local_prints
    from imgprep.storage.stores import Storage

    storage = Storage()
    prints = JoinedPrints([local_prints(str(same_split / f"{s}.prints"), storage) for s in ("train", "val")])
    whole = dedup.find_groups(prints, 8, workers=1)
    assert whole.grouped
    monkeypatch.setattr(dedup, "WINDOW_BLOCK", 3)
    blocks = dedup.find_groups(prints, 8, workers=1)
    assert np.array_equal(whole.group, blocks.group) and whole.hits == blocks.hits
    assert np.array_equal(prints.column("windows", 100, 250), prints.column("windows")[100:250])  # across parts


@pytest.mark.parametrize(("kind", "dropped"), [
    ("phash64-dct32-w14-fold2", ("chroma", "window_chroma", "alt_chroma", "detail")),  # before the colour check
    ("phash64-dct32-w14-fold2-chroma32", ("detail",)),  # before the detail share
    ("phash64-dct32-w14-fold2-chroma32-detail", ()),  # a flag at 0.02 in place of the share (its column renamed)
])
def test_a_file_of_an_earlier_fingerprint_kind_is_refused_and_inspect_decodes(same_split, tmp_path, kind, dropped):
    """A fingerprint file written by an earlier imgprep (its kind, without the columns added since)
    holds rows this imgprep cannot compare (no colour word) or judge (no detail share): inspect names
    the kind, decodes every record, and gives the same answer."""
    import hashlib
    import shutil

    from imgprep.formats.prints import layout, parse

    out = tmp_path / "old"
    shutil.copytree(same_split, out)
    path = out / "train.prints"
    data = path.read_bytes()
    header = parse(data[:65536], str(path), len(data))
    kept = [c for c in header.columns if c.name not in dropped]
    assert len(kept) == len(header.columns) - len(dropped)
    renamed = {"detail": "low_detail"} if kind.endswith("-detail") else {}
    head, _ = layout(header.rows, [(renamed.get(c.name, c.name), c.typecode, c.count) for c in kept], kind)
    body = b"".join(data[c.offset: c.offset + c.nbytes] + b"\0" * (-c.nbytes % 8) for c in kept)
    path.write_bytes(head + body)
    record_path = out / "train.dataset.json"
    record = json.loads(record_path.read_text())
    record["fingerprints"].update(sha256=hashlib.sha256(head + body).hexdigest(), bytes=len(head + body))
    record_path.write_text(json.dumps(record))
    findings = inspect(out)
    (note,) = findings.collection.notes
    assert f"another kind ({kind};" in note and note.startswith("fingerprints: decoded every record")
    assert findings.summary == inspect(same_split).summary  # the same answer, decoded
def test_the_file_carries_each_image_s_detail_share(same_split):
    """The detail share travels in the file, one byte per row, as the fingerprint of the stored image gives it."""
    import numpy as np

    from imgprep.formats import recordio
    from imgprep.splits.prints_file import local_prints
    from imgprep.storage.stores import Storage

    prints = local_prints(str(same_split / "train.prints"), Storage())
    level = prints.column("detail")
    assert level.dtype == np.uint8 and len(level) == len(prints)
    stored = {}
    with recordio.RecordReader(same_split / "train.rec") as reader:
        for payload in reader:
            header, _, image = recordio.unpack_image_record(payload)
            stored[int(header.id)] = image
    ids, kinds = prints.column("id"), prints.column("kind")
    expected = [phash.detail_level(dedup.measure(stored[int(ids[r])]).print.detail) if kinds[r] == dedup.OK
                else phash.NO_DETAIL_LEVEL for r in range(len(prints))]
    assert level.tolist() == expected and len(set(expected)) > 3
