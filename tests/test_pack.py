"""The packer on its own: order and determinism, bounded work, bad images, shards, atomic outputs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import imgfactory
import numpy as np
import pytest
from packhelp import PackOptions, pack

import imgprep
from imgprep.api import write_lst
from imgprep.errors import BadRecordsError, UsageError, WorkerError
from imgprep.formats import recordio
from imgprep.formats.lst import LstItem
from imgprep.packing.sources import LocalImageSource


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> tuple[Path, list[LstItem]]:
    root = tmp_path_factory.mktemp("images")
    files = imgfactory.class_tree(root, ["cat", "dog", "emu"], 12, png_every=5)
    items = [
        LstItem(100 + i, (float(["cat", "dog", "emu"].index(f.parent.name)),), str(f.relative_to(root)))
        for i, f in enumerate(files)
    ]
    return root, items


def read_all(prefix: Path) -> list[tuple[recordio.IRHeader, tuple[float, ...], bytes]]:
    with recordio.RecordReader(f"{prefix}.rec", f"{prefix}.idx") as reader:
        return [recordio.unpack_image_record(reader.read_key(k)) for k in reader.keys]


def test_records_follow_the_list(dataset, tmp_path) -> None:
    root, items = dataset
    summary = pack(items, root, str(tmp_path / "out"), imgprep.TransformSpec(resize=32), PackOptions(num_workers=2))
    assert summary.records == len(items) and summary.skipped == 0
    assert summary.outputs == [str(tmp_path / "out.rec"), str(tmp_path / "out.idx")]
    records = read_all(tmp_path / "out")
    assert [h.id for h, _, _ in records] == [i.index for i in items]
    assert [labels for _, labels, _ in records] == [i.labels for i in items]
    import io

    from PIL import Image

    assert all(min(Image.open(io.BytesIO(img)).size) == 32 for _, _, img in records)


@pytest.mark.parametrize("executor", ["process", "thread"])
def test_bytes_identical_for_any_worker_count(dataset, tmp_path, executor) -> None:
    root, items = dataset
    spec = imgprep.TransformSpec(size=(40, 30), fit="pad")
    outputs = []
    for workers in (1, 2, 4):
        prefix = tmp_path / f"w{workers}"
        pack(items, root, str(prefix), spec, PackOptions(num_workers=workers, executor=executor, chunk_size=3))
        outputs.append((Path(f"{prefix}.rec").read_bytes(), Path(f"{prefix}.idx").read_bytes()))
    assert outputs[0] == outputs[1] == outputs[2]


def test_bad_images_are_skipped_and_reported(dataset, tmp_path) -> None:
    root, items = dataset
    bad_root = tmp_path / "imgs"
    bad_root.mkdir()
    for item in items[:4]:
        target = bad_root / item.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes((root / item.path).read_bytes())
    (bad_root / "junk.jpg").write_bytes(imgfactory.not_an_image())
    (bad_root / "cut.jpg").write_bytes(imgfactory.truncated_jpeg())
    listed = [
        *items[:2],
        LstItem(7, (0.0,), "junk.jpg"),
        items[2],
        LstItem(8, (1.0,), "cut.jpg"),
        LstItem(9, (1.0,), "missing.jpg"),
        items[3],
    ]
    summary = pack(
        listed, bad_root, str(tmp_path / "out"), imgprep.TransformSpec(resize=16), PackOptions(num_workers=2)
    )
    assert (summary.records, summary.skipped) == (4, 3)
    assert [h.id for h, _, _ in read_all(tmp_path / "out")] == [
        items[0].index,
        items[1].index,
        items[2].index,
        items[3].index,
    ]
    report = Path(summary.report).read_text().splitlines()
    assert report[0] == "index\tpath\treason"
    assert [line.split("\t")[0] for line in report[1:]] == ["7", "8", "9"]
    assert "cannot read" in report[3]

    # --strict: the first bad image fails the run and nothing is left under a final name.
    with pytest.raises(BadRecordsError, match=r"junk\.jpg: not an image .*record 7"):
        pack(
            listed,
            bad_root,
            str(tmp_path / "strict"),
            imgprep.TransformSpec(resize=16),
            PackOptions(num_workers=2, strict=True),
        )
    assert not list(tmp_path.glob("strict*")) and not list(tmp_path.glob(".strict*"))


def test_all_bad_fails_without_empty_output(tmp_path) -> None:
    (tmp_path / "junk.jpg").write_bytes(b"junk")
    with pytest.raises(imgprep.ImgprepError, match="no records written"):
        pack([LstItem(0, (0.0,), "junk.jpg")], tmp_path, str(tmp_path / "out"), options=PackOptions(num_workers=1))
    assert not list(tmp_path.glob("out*"))


@pytest.mark.parametrize(
    ("options", "expected"), [({"shard_records": 10}, [10, 10, 10, 6]), ({"shard_size": 20000}, None)]
)
def test_shards(dataset, tmp_path, options, expected) -> None:
    root, items = dataset
    summary = pack(
        items, root, str(tmp_path / "s"), imgprep.TransformSpec(resize=24), PackOptions(num_workers=2, **options)
    )
    recs = sorted(tmp_path.glob("s-*.rec"))
    assert [p.name for p in recs] == [f"s-{i:05d}.rec" for i in range(len(recs))]
    counts = [recordio.count_records(p) for p in recs]
    assert sum(counts) == len(items) == summary.records
    if expected:
        assert counts == expected
    else:
        assert len(recs) > 1 and all(p.stat().st_size <= 20000 for p in recs)
    # Shards concatenate to the unsharded file, and each .idx describes its own shard.
    pack(items, root, str(tmp_path / "whole"), imgprep.TransformSpec(resize=24), PackOptions(num_workers=1))
    assert b"".join(p.read_bytes() for p in recs) == (tmp_path / "whole.rec").read_bytes()
    for rec in recs:
        with recordio.RecordReader(rec, rec.with_suffix(".idx")) as reader:
            assert len(reader.keys) == recordio.count_records(rec)
            for key in reader.keys:
                reader.read_key(key)


def test_pack_label_multi_label(tmp_path) -> None:
    imgfactory.write(tmp_path / "a.jpg", imgfactory.jpeg(20, 20))
    items = [LstItem(0, (1.0, 0.0, 1.0), "a.jpg"), LstItem(1, (0.0, 1.0, 0.0), "a.jpg")]
    pack(items, tmp_path, str(tmp_path / "m"), options=PackOptions(num_workers=1, pack_label=True))
    assert [(h.flag, labels) for h, labels, _ in read_all(tmp_path / "m")] == [
        (3, (1.0, 0.0, 1.0)),
        (3, (0.0, 1.0, 0.0)),
    ]
    pack(items, tmp_path, str(tmp_path / "f"), options=PackOptions(num_workers=1))
    assert [(h.flag, labels) for h, labels, _ in read_all(tmp_path / "f")] == [(0, (1.0,)), (0, (0.0,))]


def test_pass_through_stores_file_bytes(dataset, tmp_path) -> None:
    root, items = dataset
    pack(items, root, str(tmp_path / "p"), imgprep.TransformSpec(pass_through=True), PackOptions(num_workers=4))
    images = [img for _, _, img in read_all(tmp_path / "p")]
    assert images == [(root / i.path).read_bytes() for i in items]


class ArraySource(LocalImageSource):
    """In-memory pixels, the way MNIST is packed without intermediate files."""

    def __init__(self, arrays):
        self.arrays = arrays

    def local_path(self, item):
        return None

    def fetch(self, item):
        return self.arrays[item.index]

    def describe(self, item):
        return f"array[{item.index}]"


class _KillsWorker:
    def __reduce__(self):
        return (os._exit, (9,))


def test_array_source_packs_exact_pixels(tmp_path) -> None:
    arrays = [np.full((28, 28), i * 20, np.uint8) for i in range(5)]
    items = [LstItem(i, (float(i),), f"{i}.png") for i in range(5)]
    pack(
        items,
        ArraySource(arrays),
        str(tmp_path / "a"),
        imgprep.TransformSpec(encoding="png", color=0),
        PackOptions(num_workers=2),
    )
    import io

    from PIL import Image

    for (_, _, img), arr in zip(read_all(tmp_path / "a"), arrays, strict=True):
        assert np.array_equal(np.asarray(Image.open(io.BytesIO(img))), arr)


def test_a_dying_worker_fails_the_run(tmp_path) -> None:
    arrays = {i: np.zeros((8, 8), np.uint8) for i in range(40)}
    arrays[25] = _KillsWorker()
    items = [LstItem(i, (0.0,), f"{i}.png") for i in range(40)]
    with pytest.raises(WorkerError, match="worker process died"):
        pack(items, ArraySource(arrays), str(tmp_path / "k"), options=PackOptions(num_workers=2, executor="process"))
    assert os.listdir(tmp_path) == []


def test_options_validation() -> None:
    with pytest.raises(UsageError, match="not both"):
        PackOptions(shard_records=1, shard_size=10)
    with pytest.raises(UsageError, match="at least 1"):
        PackOptions(num_workers=0)
    with pytest.raises(UsageError, match="empty"):
        pack([], ".", "x")


def test_api_mirrors_cli(dataset, tmp_path) -> None:
    root, items = dataset
    write_lst(tmp_path / "t.lst", items)
    summary = imgprep.pack(tmp_path / "t.lst", root=root, output=tmp_path / "api", resize=20, num_workers=2)
    assert summary.records == len(items)
    with pytest.raises(TypeError, match="unknown option"):
        imgprep.pack(tmp_path / "t.lst", root=root, output=tmp_path / "x", resise=20)


def test_cli_pack_summary_and_errors(dataset, tmp_path, imgprep_cli) -> None:
    root, items = dataset
    write_lst(tmp_path / "a.lst", items[:10])
    write_lst(tmp_path / "b.lst", items[10:])
    proc = imgprep_cli(
        "pack",
        tmp_path / "a.lst",
        tmp_path / "b.lst",
        "--root",
        root,
        "-o",
        tmp_path / "o",
        "--resize",
        "20",
        "-j",
        "2",
        "-v",
    )
    assert f"{len(items)} records written, 0 skipped" in proc.stderr
    assert "image path:" in proc.stderr
    assert recordio.count_records(tmp_path / "o.rec") == len(items)

    proc = imgprep_cli(
        "pack", tmp_path / "a.lst", tmp_path / "a.lst", "--root", root, "-o", tmp_path / "d", check=False
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f"imgprep: error: {tmp_path / 'a.lst'}: index 100 also appears in {tmp_path / 'a.lst'}"
    ]
    proc = imgprep_cli(
        "pack", tmp_path / "a.lst", "--root", root, "-o", tmp_path / "u", "--resize", "5", "--size", "4x4", check=False
    )
    assert proc.returncode == 2 and "cannot be used together" in proc.stderr
    proc = imgprep_cli("pack", "--help")
    assert "Examples:" in proc.stdout and "--pass-through" in proc.stdout and "Exit status" in proc.stdout


@pytest.mark.parametrize("executor", ["thread", "process"])
def test_cli_executor_choice(dataset, tmp_path, imgprep_cli, executor) -> None:
    root, items = dataset
    write_lst(tmp_path / "a.lst", items)
    args = ("pack", tmp_path / "a.lst", "--root", root, "--resize", "20", "-j", "2")
    proc = imgprep_cli(*args, "-o", tmp_path / executor, "--executor", executor)
    assert f"(2 {executor} workers," in proc.stderr
    imgprep_cli(*args, "-o", tmp_path / "auto", "-q")
    assert (tmp_path / f"{executor}.rec").read_bytes() == (tmp_path / "auto.rec").read_bytes()
    proc = imgprep_cli(*args, "-o", tmp_path / "x", "--executor", "fibers", check=False)
    assert proc.returncode == 2 and "fibers" in proc.stderr


def test_native_path_runs_threads_and_imports_no_process_pool(dataset, tmp_path) -> None:
    """The default worker kind follows the image path (measured: imgprep/imaging/native.py), and a
    threaded or single-worker run does not pay for importing multiprocessing or PIL it never uses."""
    pytest.importorskip("imgprep._native")
    root, items = dataset
    jpegs = [item for item in items if item.path.endswith(".jpg")]
    write_lst(tmp_path / "a.lst", jpegs)
    code = (
        "import sys; from imgprep.cli.main import main; sys.argv = ['imgprep'] + sys.argv[1:]\n"
        "try: main()\nexcept SystemExit: pass\n"
        "print(sorted(m for m in ('multiprocessing', 'PIL') if m in sys.modules))"
    )
    args = [str(tmp_path / "a.lst"), "--root", str(root), "-o", str(tmp_path / "o"), "--resize", "20", "-j", "2"]
    env = {**os.environ, "IMGPREP_NATIVE": "1"}
    proc = subprocess.run([sys.executable, "-c", code, "pack", *args], capture_output=True, text=True, env=env)
    assert "(2 thread workers, native path)" in proc.stderr, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_help_and_import_stay_light() -> None:
    heavy = "('PIL', 'numpy', 'boto3', 'pycocotools')"
    code = f"import sys, imgprep.cli.main; print(sorted(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_sigterm_leaves_nothing_behind(tmp_path) -> None:
    imgfactory.write(tmp_path / "big.jpg", imgfactory.jpeg(1600, 1200, quality=95))
    write_lst(tmp_path / "l.lst", [LstItem(i, (0.0,), "big.jpg") for i in range(3000)])
    out = tmp_path / "out"
    out.mkdir()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "imgprep",
            "pack",
            str(tmp_path / "l.lst"),
            "--root",
            str(tmp_path),
            "-o",
            str(out / "train"),
            "--resize",
            "300",
            "-j",
            "2",
            "-q",
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not any(p.name.endswith(".part") for p in out.iterdir()):
        if proc.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"pack ended before it could be interrupted: {proc.stderr.read()}")
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err
    assert list(out.iterdir()) == []
