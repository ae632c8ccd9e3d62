"""``imgprep verify``: a clean dataset passes; each kind of damage is caught and names its record."""

from __future__ import annotations

import hashlib
import json
import tracemalloc
from pathlib import Path

import pytest
from s3servers import S3Server, seaweed_fixture  # noqa: F401 - fixture

from imgprep.formats import dataset as ds
from imgprep.formats import recordio
from imgprep.formats.lst import LstItem, dumps
from imgprep.storage import Storage
from imgprep.storage.local import LocalStore
from imgprep.verify.index import check_index, read_index
from imgprep.verify.ledger import Labels, Ledger
from imgprep.verify.report import Report
from imgprep.verify.run import verify as run_verify


def verify(path: str, **kw):
    """verify with the store a face would pass (local unless the test gives one)."""
    kw.setdefault("storage", LocalStore())
    return run_verify(path, **kw)

N, CLASSES = 12, 4


def _payloads(imgfactory, *, multi: bool = False) -> list[bytes]:
    out = []
    for i in range(N):
        image = imgfactory.jpeg(64 + i, 48, seed=i)
        label = [float(i % 2), 1.0, 0.0, float(i % 3 == 0)] if multi else float(i % CLASSES)
        out.append(recordio.pack_image_record(label, i, image))
    return out


def _write(folder: Path, payloads: list[bytes], name: str = "train", keys: list[int] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    with recordio.RecordWriter(folder / f"{name}.rec", folder / f"{name}.idx") as writer:
        for i, payload in enumerate(payloads):
            writer.write(payload, key=i if keys is None else keys[i])
    (folder / "classes.json").write_text(json.dumps({"num_classes": CLASSES, "names": {}}))
    return folder / f"{name}.rec"


def _lst(folder: Path, ids: range) -> Path:
    items = [LstItem(i, (float(i % CLASSES),), f"c{i % CLASSES}/{i}.jpg") for i in ids]
    path = folder / "train.lst"
    path.write_text(dumps(items))
    return path


@pytest.fixture
def clean(tmp_path, imgfactory) -> Path:
    return _write(tmp_path / "data", _payloads(imgfactory))


def _problems(path, **kw) -> list[str]:
    return [str(p) for p in verify(str(path), progress=False, workers=2, **kw).problems]


def test_clean_dataset_passes_from_rec_prefix_and_cli(clean, imgprep_cli):
    report = verify(str(clean), progress=False)
    assert report.ok and report.records == N and report.decoded == N
    assert verify(str(clean)[: -len(".rec")], progress=False).ok
    proc = imgprep_cli("verify", clean, "--against", _lst(clean.parent, range(N)))
    assert "OK: 12 records, no problems" in proc.stdout


def test_flipped_payload_byte_names_the_record(clean):
    data = bytearray(clean.read_bytes())
    with recordio.RecordReader(clean, clean.with_suffix(".idx")) as reader:
        offset = dict(recordio.read_index(clean.with_suffix(".idx")))[5]
        size = len(reader.read_at(offset))
    data[offset + 8 + size // 2] ^= 0x5A  # inside record id 5's entropy-coded data
    clean.write_bytes(bytes(data))
    problems = _problems(clean)
    assert len(problems) == 1
    assert problems[0].startswith(f"train.rec record #5 (id 5, byte {offset}): payload of")
    assert "cannot decode image" in problems[0]


def test_truncated_file_names_the_last_record(clean):
    data = clean.read_bytes()
    last = recordio.read_index(clean.with_suffix(".idx"))[-1][1]
    clean.write_bytes(data[:-40])
    problems = _problems(clean)
    assert f"train.rec record #11 (byte {last}): record at byte {last} is truncated" in problems[0]
    assert any("train.idx line 12: key 11 points at byte" in p for p in problems)


def test_idx_offset_off_by_four_names_the_line_and_the_record(clean):
    idx = clean.with_suffix(".idx")
    lines = idx.read_text().splitlines()
    key, offset = lines[3].split("\t")
    lines[3] = f"{key}\t{int(offset) + 4}"
    idx.write_text("\n".join(lines) + "\n")
    problems = _problems(clean)
    assert f"train.idx line 4: key 3 points at byte {int(offset) + 4}, which is not the start of a record" \
        in problems[0]
    assert problems[1] == f"train.rec record #3 (id 3, byte {offset}): is not in train.idx"


def test_label_equal_to_num_classes_names_the_record(tmp_path, imgfactory):
    payloads = _payloads(imgfactory)
    payloads[7] = recordio.pack_image_record(float(CLASSES), 7, imgfactory.jpeg(40, 40))
    rec = _write(tmp_path, payloads)
    problems = _problems(rec)
    assert len(problems) == 1 and problems[0].startswith("train.rec record #7 (id 7, byte ")
    assert problems[0].endswith(f"label {CLASSES} is outside [0, {CLASSES})")
    assert _problems(rec, num_classes=CLASSES + 1) == []  # --num-classes wins over classes.json


def test_multi_label_record_of_wrong_width(tmp_path, imgfactory):
    payloads = _payloads(imgfactory, multi=True)
    payloads[2] = recordio.pack_image_record([1.0, 0.0, 1.0], 2, imgfactory.jpeg(40, 40))
    rec = _write(tmp_path, payloads)
    (tmp_path / "hyperparameters.json").write_text(json.dumps({"num_classes": "4", "multi_label": "1",
                                                               "num_training_samples": "12"}))
    problems = _problems(rec)
    assert len(problems) == 1
    assert problems[0].startswith("train.rec record #2 (id 2, byte ")
    assert "holds 3 label(s) where this dataset's records hold a multi-label vector of width 4" in problems[0]


def test_multi_hot_values_must_be_zero_or_one(tmp_path, imgfactory):
    payloads = _payloads(imgfactory, multi=True)
    payloads[9] = recordio.pack_image_record([1.0, 2.0, 0.0, 0.0], 9, imgfactory.jpeg(40, 40))
    rec = _write(tmp_path, payloads)
    (tmp_path / "hyperparameters.json").write_text(json.dumps({"num_classes": "4", "multi_label": "1",
                                                               "num_training_samples": "12"}))
    [problem] = _problems(rec)
    assert problem.startswith("train.rec record #9 (id 9,") and "holds 2 (only 0 and 1" in problem


def test_duplicated_id_names_both_records(tmp_path, imgfactory):
    payloads = _payloads(imgfactory)
    payloads[6] = recordio.pack_image_record(2.0, 4, imgfactory.jpeg(40, 40))
    keys = list(range(N))
    keys[6] = 4
    rec = _write(tmp_path, payloads, keys=keys)
    problems = _problems(rec)
    assert any(p.startswith("train.rec record #6 (id 4, byte ") and "duplicate id 4 (first: train.rec record #4"
               in p for p in problems)
    assert "train.idx line 7: duplicate key 4 (first on line 5)" in problems


def test_record_missing_against_the_list(clean):
    problems = _problems(clean, against=[LstItem(i, (float(i % CLASSES),), f"{i}.jpg") for i in range(N + 1)],
                         against_name="train.lst")
    assert problems == ["train.lst entry 13 (id 12, 12.jpg): has no record"]


def test_wrong_label_and_extra_record_against_the_list(clean):
    items = [LstItem(i, (float((i + (i == 3)) % CLASSES),), f"{i}.jpg") for i in range(N - 1)]
    problems = _problems(clean, against=items, against_name="train.lst")
    assert problems == ["train.lst entry 4 (id 3, 3.jpg): has labels (0) but its record holds (3)",
                        "record id 11: is not in train.lst"]


def _dataset_record(rec: Path, settings: dict) -> Path:
    idx = rec.with_suffix(".idx")
    entry = ds.ShardEntry(rec.name, idx.name, N, rec.stat().st_size, idx.stat().st_size,
                          hashlib.sha256(rec.read_bytes()).hexdigest(), hashlib.sha256(idx.read_bytes()).hexdigest())
    record = ds.DatasetRecord("0.1.0", ds.ListRef("train.lst", "0" * 64, N), (entry,), settings,
                              num_classes=CLASSES)
    path = rec.parent / ds.record_name("train")
    path.write_text(ds.to_json(record))
    return path


def test_dataset_record_checks_counts_checksums_and_declared_size(clean):
    path = _dataset_record(clean, {"color": 1})
    assert verify(str(path), progress=False).ok
    assert verify(str(clean), progress=False).checks[-1] == "counts and checksums vs the dataset record"
    data = bytearray(clean.read_bytes())
    data[40] ^= 1  # inside record 0's JPEG header padding: decodes, but the bytes changed
    clean.write_bytes(bytes(data))
    assert any("train.rec: SHA-256" in p and "differs from the dataset record" in p for p in _problems(path))
    _dataset_record(clean, {"color": 1, "resize": 48 + 1})
    sized = _problems(path)
    assert "the dataset declares a shorter side of 49" in sized[0] and sized[0].startswith("train.rec record #0")


def test_cli_exits_1_and_lists_problems(tmp_path, imgfactory, imgprep_cli):
    payloads = _payloads(imgfactory)
    payloads[1] = recordio.pack_image_record(-1.0, 1, imgfactory.jpeg(40, 40))
    rec = _write(tmp_path, payloads)
    proc = imgprep_cli("verify", rec, check=False)
    assert proc.returncode == 1
    assert "FAILED: 1 problem" in proc.stdout and "record #1 (id 1," in proc.stdout
    assert proc.stderr.strip().endswith(f"1 problem(s) in {rec}")


def test_mxnet_written_records_verify(tmp_path, imgfactory, mxnet):
    payloads = _payloads(imgfactory)
    (tmp_path / "p.json").write_text(json.dumps([p.hex() for p in payloads]))
    mxnet.run("write", tmp_path / "mx.rec", tmp_path / "mx.idx", tmp_path / "p.json")
    report = verify(str(tmp_path / "mx.rec"), num_classes=CLASSES, progress=False)
    assert report.ok and report.records == N and ".idx" in report.checks


@pytest.mark.s3
def test_s3_dataset_record_and_a_damaged_shard(tmp_path, imgfactory, seaweed: S3Server):
    rec = _write(tmp_path, _payloads(imgfactory))
    record = _dataset_record(rec, {"color": 1})
    client = seaweed.client()
    client.create_bucket(Bucket="verify")
    for path in (rec, rec.with_suffix(".idx"), record, tmp_path / "classes.json"):
        client.put_object(Bucket="verify", Key=f"data/{path.name}", Body=path.read_bytes())
    storage = Storage.from_options(endpoint_url=seaweed.endpoint_url)
    report = verify("s3://verify/data/train.dataset.json", progress=False, storage=storage)
    assert report.ok and report.records == N and report.checks[-1].startswith("counts and checksums")
    damaged = bytearray(rec.read_bytes())
    last = recordio.read_index(rec.with_suffix(".idx"))[-1][1]
    damaged[(last + len(damaged)) // 2] ^= 0x5A  # inside the last record's entropy-coded data
    client.put_object(Bucket="verify", Key="data/train.rec", Body=bytes(damaged))
    problems = [str(p) for p in verify("s3://verify/data/train", progress=False, storage=storage).problems]
    assert problems[0].startswith("train.rec record #11 (id 11, byte ") and "cannot decode image" in problems[0]
    assert problems[1].startswith("train.rec: SHA-256")


def test_shard_prefix_walks_every_shard_and_ids_are_unique_across_them(tmp_path, imgfactory):
    payloads = _payloads(imgfactory)
    for number, part in enumerate((payloads[:5], payloads[5:])):
        rec, idx = recordio.shard_names(str(tmp_path / "train"), number)
        with recordio.RecordWriter(rec, idx) as writer:
            for payload in part:
                writer.write(payload, key=recordio.unpack_image_record(payload)[0].id)
    report = verify(str(tmp_path / "train"), num_classes=CLASSES, progress=False)
    assert report.ok and report.records == N and report.shards == ["train-00000.rec", "train-00001.rec"]
    with recordio.RecordWriter(tmp_path / "train-00002.rec", tmp_path / "train-00002.idx") as writer:
        writer.write(payloads[0])
    problems = _problems(tmp_path / "train", num_classes=CLASSES)
    assert problems[0].startswith("train-00002.rec record #0 (id 0, byte 0): duplicate id 0 (first: "
                                  "train-00000.rec record #0")


def test_shards_missing_from_a_dataset_record_are_problems(clean):
    path = _dataset_record(clean, {})
    clean.with_suffix(".idx").unlink()
    assert _problems(path) == ["train.idx: is missing (the dataset record lists it)"]
    clean.unlink()
    assert _problems(path) == ["train.rec: is missing (the dataset record lists it)"]


def test_what_prepare_writes_verifies_and_inspects_clean(tmp_path, imgfactory, imgprep_cli):
    imgfactory.class_tree(tmp_path / "photos", ["ant", "bee", "cow"], 6)
    imgprep_cli("prepare", "folders", tmp_path / "photos", "-o", tmp_path / "out", "--split", "train=0.5,val=0.5",
                "--resize", "40", "-q")
    for split in ("train", "val"):
        out = imgprep_cli("verify", tmp_path / "out" / f"{split}.rec", "--against", tmp_path / "out" / f"{split}.lst")
        assert "OK: 9 records, no problems" in out.stdout and "class indices in [0, 3)" in out.stdout
    doc = json.loads(imgprep_cli("inspect", tmp_path / "out", "--json").stdout)
    assert [s["name"] for s in doc["splits"]] == ["train", "val"] and doc["summary"]["leaks"] == 0
    assert doc["classes"] == ["ant", "bee", "cow"]


def _damaged(tmp_path: Path, imgfactory) -> tuple[Path, list[int]]:
    """A shard with a repeated id, a record whose framing is broken and an index that is wrong
    in every way a line can be: a line of text, a repeated key, keys pointing past, between and
    at the wrong records, keys and offsets that do not fit in 64 bits."""
    payloads = _payloads(imgfactory)
    payloads[6] = recordio.pack_image_record(2.0, 4, imgfactory.jpeg(40, 40))
    keys = list(range(N))
    keys[6] = 4
    rec = _write(tmp_path, payloads, keys=keys)
    offsets = [int(line.split("\t")[1]) for line in rec.with_suffix(".idx").read_text().splitlines()]
    data = bytearray(rec.read_bytes())
    data[offsets[9]:offsets[9] + 4] = b"\0\0\0\0"  # record 9 loses its magic: the walk reads on at record 10
    rec.write_bytes(bytes(data))
    lines = [f"{key}\t{offset}" for key, offset in zip(keys, offsets, strict=True)]
    lines[3] = f"3\t{offsets[3] + 4}"
    lines[2:2] = ["not an index line", ""]
    lines += [f"99\t{offsets[2]}", f"{2**64 + 1}\t{offsets[3]}", f"100\t{2**70}", f"-1\t{offsets[5]}",
              f"98\t{offsets[11]}"]
    rec.with_suffix(".idx").write_text("\n".join(lines) + "\n")
    return rec, offsets


def test_every_kind_of_index_and_id_damage_is_named_in_order(tmp_path, imgfactory):
    rec, at = _damaged(tmp_path, imgfactory)
    items = [LstItem(i, (float(i % CLASSES),), f"{i}.jpg") for i in range(N + 1)]
    problems = _problems(rec, against=items, against_name="train.lst")
    assert problems == [  # in the order a check as each record is read gives (duplicates are found at the end)
        f"train.rec record #6 (id 4, byte {at[6]}): duplicate id 4 (first: train.rec record #4 (id 4, byte {at[4]}))",
        f"train.rec record #9 (byte {at[9]}): no RecordIO magic number at byte {at[9]}",
        f"train.rec: bytes {at[9]}..{at[10]} are not whole records; reading on from byte {at[10]}",
        "train.idx line 3: expected 'key<TAB>offset', got 'not an index line'",
        "train.idx line 9: duplicate key 4 (first on line 7)",
        f"train.idx line 6: key 3 points at byte {at[3] + 4}, which is not the start of a record in train.rec",
        f"train.idx line 12: key 9 points at byte {at[9]}, which is not the start of a record in train.rec",
        f"train.idx line 15: key 99 points at byte {at[2]}, the start of record #2 whose id is 2",
        f"train.idx line 16: key {2**64 + 1} points at byte {at[3]}, the start of record #3 whose id is 3",
        f"train.idx line 17: key 100 points at byte {2**70}, which is not the start of a record in train.rec",
        f"train.idx line 18: key -1 points at byte {at[5]}, the start of record #5 whose id is 5",
        f"train.idx line 19: key 98 points at byte {at[11]}, the start of record #11 whose id is 11",
        f"train.rec record #6 (id 4, byte {at[6]}): is not in train.idx",
        "train.lst entry 7 (id 6, 6.jpg): has no record",
        "train.lst entry 10 (id 9, 9.jpg): has no record",
        "train.lst entry 13 (id 12, 12.jpg): has no record",
    ]


def test_what_verify_keeps_per_record_stays_under_64_bytes():
    """The walk's ledger, the parsed .idx, its check and the duplicate search over 100,000
    records in two shards (one id repeated across them): traced peak under 64 bytes a record
    (a dict and a list of tuples per record took over 500)."""
    n = 50_000

    def key(shard: int, i: int) -> int:
        return 7 if (shard, i) == (1, 9) else shard * n + i

    def index_lines(shard: int):
        for start in range(0, n, 10_000):
            yield "".join(f"{key(shard, i)}\t{16 * i}\n" for i in range(start, start + 10_000)).encode()

    report = Report("x")
    tracemalloc.start()
    try:
        ledger = Ledger(labels=False)
        for shard in (0, 1):
            index = read_index(index_lines(shard), f"{shard}.idx")
            walked = ledger.shard(f"{shard}.rec", index.ascending() if shard else None)  # offsets kept once, twice
            for i in range(n):
                ledger.add(walked, i, 16 * i, key(shard, i), 0)
            check_index(index, walked, report)
            del index
        ledger.check_duplicates(report)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert [str(p) for p in report.problems] == ["1.rec record #9 (id 7, byte 144): duplicate id 7 "
                                                 "(first: 0.rec record #7 (id 7, byte 112))"]
    assert peak / (2 * n) <= 64, peak / (2 * n)


def test_labels_for_against_keep_each_records_width():
    labels = Labels()
    for values in ((1.0,), (2.0,), (1.0, 0.0, 1.0), (0.5,)):
        labels.add(values)
    assert [labels.get(i) for i in range(4)] == [(1.0,), (2.0,), (1.0, 0.0, 1.0), (0.5,)]
