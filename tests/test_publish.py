"""Publishing safely: kill -9 anywhere then --resume, one writer, full disks, stale shards, dead parents.

Kills land at seeded random points: while records are packed, and inside the publication windows
(between a shard's ``.rec`` and its ``.idx``, and before the dataset record), which the documented
pause the runs started here inject (``Publisher.pause``) widens.  After every kill, before resuming, the
invariants are checked on what is under final names (every pair MXNet reads whole, and equal to
the uninterrupted run's), then ``--resume`` must give that run's files byte for byte.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import imgfactory
import pytest
from s3servers import S3Server, moto_server_fixture, seaweed_fixture  # noqa: F401 - fixtures

from imgprep.api import write_lst
from imgprep.formats.dataset import from_json
from imgprep.formats.lst import LstItem
from imgprep.layout.merge import merge_shards
from imgprep.splits.stream import IndexSet, ListStream
from imgprep.storage.stores import Storage

CLASSES = ["ant", "bee", "cow"]
PACK = ("--resize", "20", "-j", "1", "-q")


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("images")
    files = imgfactory.class_tree(root, CLASSES, 16, png_every=5)
    items = [LstItem(i, (float(CLASSES.index(f.parent.name)),), str(f.relative_to(root))) for i, f in enumerate(files)]
    lst = root / "all.lst"
    write_lst(lst, items)
    return root, lst


def start(*args: object, delay: float = 0.0) -> subprocess.Popen[str]:
    env = dict(os.environ)
    # The publication windows widened by an injected pause (no switch in the code under test).
    inject = (f"import time; from imgprep.packing.publish import Publisher; "
              f"Publisher.pause = staticmethod(lambda: time.sleep({delay!r})); ") if delay else ""
    cmd = [sys.executable, "-c", inject + "from imgprep.cli.main import main; main()", *(str(a) for a in args)]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            stdin=subprocess.DEVNULL)


def run(*args: object, delay: float = 0.0) -> subprocess.CompletedProcess[str]:
    proc = start(*args, delay=delay)
    out, err = proc.communicate(timeout=300)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def visible(folder: Path) -> dict[str, bytes]:
    """What a reader of the folder sees: files under final names (not hidden temporaries)."""
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if not p.name.startswith(".")}


def wait_until(proc: subprocess.Popen[str], ready: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 120  # a hang guard, not a speed claim
    while not ready():
        if proc.poll() is not None:
            _, err = proc.communicate()  # reads and closes the pipes (an unclosed one fails a later test)
            pytest.fail(f"the pack ended before {what}: {err}")
        if time.monotonic() > deadline:
            proc.kill()
            proc.communicate()
            pytest.fail(f"never reached {what}")
        time.sleep(0.005)


def check_invariants(files: dict[str, bytes], reference: dict[str, bytes], folder: Path, mxnet) -> None:
    """Every pair under final names is whole and from one run (it equals the reference's), MXNet
    reads it through its index; nothing claims the dataset is complete unless it is."""
    if any(name.endswith(".dataset.json") for name in files):
        assert {k: v for k, v in files.items() if not k.endswith(".lock")} == reference
        return
    pairs = []
    for name in files:
        if name.endswith(".idx"):
            rec = name[: -len(".idx")] + ".rec"
            assert rec in files, f"{name} published without its .rec"
            assert files[rec] == reference[rec] and files[name] == reference[name], f"{rec} is not whole"
            pairs += [folder / rec, folder / name]
        elif name.endswith(".rec"):
            assert files[name] == reference[name], f"{name} is published but not whole"
    if pairs:
        read = mxnet.run("pairs", *pairs)
        for (rec, idx), records in zip(zip(pairs[::2], pairs[1::2]), read, strict=True):
            keys = [int(line.split("\t")[0]) for line in idx.read_text().splitlines()]
            assert [r["key"] for r in records] == keys and [r["id"] for r in records] == keys, rec


def _reference(tmp_path: Path, lst: Path, root: Path, *extra: object) -> dict[str, bytes]:
    ref = tmp_path / "ref"
    ref.mkdir()
    run("pack", lst, "--root", root, "-o", ref / "train", *PACK, *extra)
    return visible(ref)


@pytest.mark.parametrize("sharded", [True, False], ids=["sharded", "unsharded"])
def test_kill_anywhere_then_resume_is_byte_identical(images, tmp_path: Path, mxnet, sharded: bool) -> None:
    root, lst = images
    extra = ("--shard-records", "8") if sharded else ()
    reference = _reference(tmp_path, lst, root, *extra)
    shards = sorted(n for n in reference if n.endswith(".rec"))
    out = tmp_path / "out"
    out.mkdir()
    rng = random.Random(13 if sharded else 14)
    for attempt in range(3):
        proc = start("pack", lst, "--root", root, "-o", out / "train", *PACK, *extra,
                     *(("--resume",) if attempt else ()), delay=0.15)
        target = rng.choice(shards)
        if attempt % 2 == 0:
            # Inside the publication window: the shard's .rec is published, its .idx is not yet.
            idx = target[: -len(".rec")] + ".idx"
            wait_until(proc, lambda t=target, i=idx: (out / t).exists() and not (out / i).exists(),
                       f"{target} published without its index")
        else:
            # While records are packed: some seeded moment after the run has begun.
            wait_until(proc, lambda: any(p.name.endswith(".part") for p in out.iterdir()), "packing")
            time.sleep(rng.uniform(0, 0.4))
        proc.kill()
        proc.communicate()
        check_invariants(visible(out), reference, out, mxnet)
    done = run("pack", lst, "--root", root, "-o", out / "train", *PACK, *extra, "--resume")
    assert done.returncode == 0, done.stderr
    assert visible(out) == reference
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def test_sigterm_in_the_publication_window(images, tmp_path: Path, mxnet) -> None:
    root, lst = images
    reference = _reference(tmp_path, lst, root, "--shard-records", "8")
    out = tmp_path / "out"
    out.mkdir()
    run("pack", lst, "--root", root, "-o", out / "train", *PACK, "--shard-records", "16")  # an older generation
    proc = start("pack", lst, "--root", root, "-o", out / "train", *PACK, "--shard-records", "8", delay=1)
    wait_until(proc, lambda: (out / "train-00001.rec").exists() and not (out / "train-00001.idx").exists()
               and (out / "train-00000.idx").exists(), "shard 1 published without its index")
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert err.strip().splitlines() == [
        "imgprep: interrupted; nothing was committed (shards already published are kept: rerun with --resume "
        "to continue)"
    ]
    check_invariants(visible(out), reference, out, mxnet)  # no shard of the 16-record run is left
    assert not [p for p in out.iterdir() if p.name.endswith(".part")]


def test_resume_keeps_good_shards_and_refuses_other_settings(images, tmp_path: Path) -> None:
    root, lst = images
    reference = _reference(tmp_path, lst, root, "--shard-records", "8")
    out = tmp_path / "out"
    out.mkdir()
    proc = start("pack", lst, "--root", root, "-o", out / "train", *PACK, "--shard-records", "8", delay=0.2)
    wait_until(proc, lambda: (out / "train-00003.idx").exists(), "four shards")
    proc.kill()
    proc.communicate()
    kept = {n: (out / n).stat().st_mtime_ns for n in ("train-00000.rec", "train-00001.rec")}
    (out / "train-00002.rec").write_bytes(b"damaged")  # a bad shard: resume redoes it and what follows

    other = run("pack", lst, "--root", root, "-o", out / "train", "--resize", "24", "-j", "1", "-q",
                "--shard-records", "8", "--resume")
    assert other.returncode == 2
    assert other.stderr.strip().splitlines() == [
        f"imgprep: error: {out / 'train'}: cannot resume, the earlier run differs (earlier != now): resize: 20 != 24 "
        "(rerun without --resume to start over)"
    ]
    done = run("pack", lst, "--root", root, "-o", out / "train", *PACK, "--shard-records", "8", "--resume")
    assert done.returncode == 0, done.stderr
    assert visible(out) == reference
    assert {n: (out / n).stat().st_mtime_ns for n in kept} == kept  # not rewritten

    again = run("pack", lst, "--root", root, "-o", out / "train", *PACK, "--shard-records", "8", "--resume")
    assert again.returncode == 0 and visible(out) == reference  # already complete: nothing to do


def test_unsharded_resume_continues_from_the_last_checkpoint(images, tmp_path: Path, mxnet) -> None:
    root, lst = images
    reference = _reference(tmp_path, lst, root)
    out = tmp_path / "out"
    out.mkdir()
    args = ("pack", lst, "--root", root, "-o", out / "train", *PACK, "--checkpoint-every", "3000")
    progress = out / "train.progress.json"

    def checkpointed() -> bool:
        try:
            return json.loads(progress.read_text())["open"]["consumed"] >= 20
        except (OSError, ValueError, KeyError, TypeError):
            return False

    proc = start(*args, "--executor", "thread", "-j", "1", delay=5)  # the delay holds it before publishing
    wait_until(proc, checkpointed, "a checkpoint 20 images in")
    proc.kill()
    proc.communicate()
    check_invariants(visible(out), reference, out, mxnet)
    state = json.loads(progress.read_text())["open"]
    inode = (out / state["rec_tmp"]).stat().st_ino
    done = run(*args, "--resume")
    assert done.returncode == 0, done.stderr
    assert visible(out) == reference
    assert (out / "train.rec").stat().st_ino == inode  # the checkpointed file was continued, not rewritten


def test_rerun_with_fewer_shards_leaves_no_stale_shard_and_merge_joins_the_dataset(images, tmp_path: Path) -> None:
    root, lst = images
    out = tmp_path / "train"
    run("pack", lst, "--root", root, "-o", out, *PACK, "--shard-records", "5")
    assert len(list(tmp_path.glob("train-*.rec"))) == 10
    run("pack", lst, "--root", root, "-o", out, *PACK, "--shard-records", "10")
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted([f"train-{i:05d}.{e}" for i in range(5) for e in ("rec", "idx")] + ["train.dataset.json"])
    record = from_json((tmp_path / "train.dataset.json").read_text(), "train.dataset.json")
    assert [s.rec for s in record.shards] == [f"train-{i:05d}.rec" for i in range(5)]
    assert record.records == 48
    summary = merge_shards(str(out), str(tmp_path / "all"), Storage())
    assert (summary.shards, summary.records) == (5, 48)


def test_two_packs_to_one_prefix_exactly_one_wins(images, tmp_path: Path) -> None:
    root, lst = images
    reference = _reference(tmp_path, lst, root, "--shard-records", "16")
    out = tmp_path / "out"
    out.mkdir()
    args = ("pack", lst, "--root", root, "-o", out / "train", *PACK, "--shard-records", "16")
    first = start(*args, delay=1.5)
    wait_until(first, lambda: (out / "train.lock").exists(), "the first run's lock")
    second = run(*args)
    assert first.poll() is None  # the second failed at once, while the first still ran
    assert second.returncode == 1
    [line] = second.stderr.strip().splitlines()
    assert line.startswith(f"imgprep: error: {out / 'train'}: another run is writing this output (pid {first.pid} on ")
    first.communicate(timeout=300)
    assert first.returncode == 0
    assert visible(out) == reference


def _fill(folder: Path, free: int) -> None:
    stat = os.statvfs(folder)
    (folder / "filler").write_bytes(b"\0" * max(0, stat.f_bavail * stat.f_frsize - free))


@pytest.fixture
def small_disk(tmp_path: Path):
    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(disk)], check=True)
    try:
        yield disk
    finally:
        subprocess.run(["umount", str(disk)], check=True)


SHARDED = ("--shard-records", "8")
CHECKPOINTED = ("--checkpoint-every", "4000")


# The free space left decides where the disk fills: taking the lock, writing records (a
# checkpoint's flush), publishing a .rec, writing the progress file after a shard.
@pytest.mark.parametrize(("extra", "free"), [
    (SHARDED, 4_000), (SHARDED, 12_000), (SHARDED, 24_000), (SHARDED, 36_000), (SHARDED, 48_000),
    (CHECKPOINTED, 12_000), (CHECKPOINTED, 30_000),
])
def test_full_disk_gives_one_line_and_keeps_the_invariants(images, tmp_path: Path, small_disk: Path, mxnet,
                                                           extra: tuple[str, ...], free: int) -> None:
    root, lst = images
    reference = _reference(tmp_path, lst, root, *extra)
    assert sum(map(len, reference.values())) > 48_000  # more than any free space below: the disk fills
    _fill(small_disk, free)
    proc = run("pack", lst, "--root", root, "-o", small_disk / "train", *PACK, *extra)
    assert proc.returncode == 1
    [line] = proc.stderr.strip().splitlines()
    assert line.startswith("imgprep: error: ") and "No space left on device" in line
    files = visible(small_disk)
    files.pop("filler")
    check_invariants(files, reference, small_disk, mxnet)
    assert not [p.name for p in small_disk.iterdir() if p.name.startswith(".")]  # no temporary file left


def _children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                out.append(int(entry))
    return out


def test_workers_die_with_their_parent(images, tmp_path: Path) -> None:
    root, lst = images
    big = tmp_path / "big.lst"
    big.write_text("".join(f"{i}\t0\t{line.split(chr(9))[-1]}" for i, line in
                           enumerate(lst.read_text().splitlines(keepends=True) * 400)))
    proc = start("pack", big, "--root", root, "-o", tmp_path / "k", "--resize", "300", "-j", "2",
                 "--executor", "process", "--native", "-q")
    wait_until(proc, lambda: len(_children(proc.pid)) >= 2, "two workers")
    workers = _children(proc.pid)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
    deadline = time.monotonic() + 30  # a hang guard
    while any(os.path.exists(f"/proc/{w}") and _state(w) != "Z" for w in workers):
        assert time.monotonic() < deadline, f"workers {workers} outlived their parent"
        time.sleep(0.05)


def _state(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "Z"


def test_cleanup_removes_local_temporaries_of_killed_runs(images, tmp_path: Path) -> None:
    root, lst = images
    proc = start("pack", lst, "--root", root, "-o", tmp_path / "train", *PACK, delay=2)
    wait_until(proc, lambda: (tmp_path / "train.rec").exists(), "the .rec")
    proc.kill()
    proc.communicate()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".train.idx.") and p.name.endswith(".part")]
    done = run("cleanup", tmp_path)
    assert done.returncode == 0, done.stderr
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]


# --------------------------------------------------------------------------- S3


@pytest.fixture
def out_bucket(seaweed: S3Server) -> str:
    name = f"pub{os.getpid()}-{random.randrange(1 << 30)}"
    seaweed.client().create_bucket(Bucket=name)
    return name


def objects(server: S3Server, bucket: str, prefix: str = "") -> dict[str, bytes]:
    client = server.client()
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", ())]
    return {k: client.get_object(Bucket=bucket, Key=k)["Body"].read() for k in sorted(keys)}


def test_s3_kill_then_resume_is_byte_identical_and_reruns_leave_no_stale_shard(
    images, tmp_path: Path, seaweed: S3Server, out_bucket: str, mxnet
) -> None:
    root, lst = images
    endpoint = ("--endpoint-url", seaweed.endpoint_url)
    reference = _reference(tmp_path, lst, root, "--shard-records", "8")
    uri = f"s3://{out_bucket}/d/train"
    args = ("pack", lst, "--root", root, "-o", uri, *PACK, "--shard-records", "8", *endpoint)
    client = seaweed.client()

    def listed() -> set[str]:
        return {o["Key"] for o in client.list_objects_v2(Bucket=out_bucket, Prefix="d/").get("Contents", ())}

    def check() -> None:
        got = {k[len("d/"):]: v for k, v in objects(seaweed, out_bucket, "d/").items()
               if not k.startswith("d/.imgprep-uploads/")}
        local = tmp_path / "seen"
        shutil.rmtree(local, ignore_errors=True)
        local.mkdir()
        for name, data in got.items():
            (local / name).write_bytes(data)
        check_invariants(got, reference, local, mxnet)

    # Inside the publication window, then (resuming) while records are packed, then resume to the end.
    # The window is widened to 0.6 s: a listing of the bucket can take longer than 0.2 s on a busy
    # machine, and the pack then ends without the poll ever seeing a .rec without its index.
    proc = start(*args, delay=0.6)
    wait_until(proc, lambda: "d/train-00002.rec" in listed() and "d/train-00002.idx" not in listed(),
               "a .rec published without its index")
    proc.kill()
    proc.communicate()
    check()
    proc = start(*args, "--resume", delay=0.2)
    wait_until(proc, lambda: "d/train-00004.idx" in listed(), "shard 4")
    time.sleep(random.Random(15).uniform(0, 0.3))
    proc.kill()
    proc.communicate()
    check()

    done = run(*args, "--resume")
    assert done.returncode == 0, done.stderr
    assert {k[len("d/"):]: v for k, v in objects(seaweed, out_bucket, "d/").items()} == reference

    second = run(*args[:-4], "--shard-records", "16", *endpoint)  # fewer shards: none of the old left
    assert second.returncode == 0, second.stderr
    assert sorted(listed()) == sorted(
        [f"d/train-{i:05d}.{e}" for i in range(3) for e in ("rec", "idx")] + ["d/train.dataset.json"])
    summary = merge_shards(uri, str(tmp_path / "all"), Storage.from_options(endpoint_url=seaweed.endpoint_url))
    assert (summary.shards, summary.records) == (3, 48)


def test_s3_second_writer_fails_at_once(images, tmp_path: Path, seaweed: S3Server, out_bucket: str) -> None:
    root, lst = images
    uri = f"s3://{out_bucket}/train"
    args = ("pack", lst, "--root", root, "-o", uri, *PACK, "--endpoint-url", seaweed.endpoint_url)
    client = seaweed.client()
    first = start(*args, delay=2)
    wait_until(first, lambda: "train.lock" in {o["Key"] for o in client.list_objects_v2(
        Bucket=out_bucket).get("Contents", ())}, "the first run's lock")
    second = run(*args)
    assert first.poll() is None
    assert second.returncode == 1
    assert f"another run is writing this output (pid {first.pid} on " in second.stderr
    first.communicate(timeout=300)
    assert first.returncode == 0
    record = json.loads(client.get_object(Bucket=out_bucket, Key="train.dataset.json")["Body"].read())
    assert record["records"] == 48


# A pack to S3 with PART-byte parts (moto takes parts down to 1 KiB; S3 and SeaweedFS want 5 MiB:
# then the images pass through, to fill them), checkpointed every CHECKPOINT bytes, its list read
# slowly (PAUSE seconds an item) so that a test can kill it while the .rec uploads.
_SMALL_PARTS_PACK = """
import logging, sys, time
from imgprep.errors import ImgprepError
from imgprep.formats.lst import read_lst
from imgprep.imaging.spec import TransformSpec
from imgprep.packing.packer import PackOptions, pack
from imgprep.storage.s3 import S3Tuning
from imgprep.storage.stores import Storage

class Slow:
    def __init__(self, items, pause):
        self.items, self.pause = items, pause
    def __len__(self):
        return len(self.items)
    def __iter__(self):
        for item in self.items:
            time.sleep(self.pause)
            yield item

lst, root, out, endpoint, resume, pause, shard_records, part, checkpoint = sys.argv[1:]
spec = TransformSpec(resize=20) if int(part) < 5 << 20 else TransformSpec(pass_through=True)
logging.basicConfig(format="%(message)s")
logging.getLogger("imgprep").setLevel(logging.INFO)
storage = Storage.from_options(endpoint_url=endpoint, part_size=int(part),
                               tuning=S3Tuning(min_part_size=min(int(part), 5 << 20)))
options = PackOptions(num_workers=1, resume=resume == "1", checkpoint_bytes=int(checkpoint), storage=storage,
                      quiet=True, progress=False, shard_records=int(shard_records))
try:
    pack(Slow(read_lst(lst), float(pause)), root, out, spec, options)
except ImgprepError as exc:  # as the CLI reports it
    sys.exit(f"imgprep: error: {exc}")
"""


def _small_parts_pack(lst: Path, root: Path, out: str, server: S3Server, *, resume: bool, pause: float,
                      shard_records: int) -> subprocess.Popen[str]:
    part, checkpoint = (2048, 3000) if server.name == "moto" else (5 << 20, 1 << 20)
    cmd = [sys.executable, "-c", _SMALL_PARTS_PACK, str(lst), str(root), out, server.endpoint_url,
           "1" if resume else "0", str(pause), str(shard_records), str(part), str(checkpoint)]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)


def _finish(proc: subprocess.Popen[str]) -> str:
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    return err


def _outputs(server: S3Server, bucket: str, folder: str) -> dict[str, bytes]:
    """The objects under ``folder/`` by name; upload markers kept (none may be left)."""
    return {k[len(folder) + 1 :]: v for k, v in objects(server, bucket, folder + "/").items()}


def _killed_inside_an_upload(images, tmp_path: Path, server: S3Server, mxnet,
                             shard_records: int) -> tuple[str, dict, dict[str, bytes]]:
    """A small-parts pack to s3://BUCKET/out/train killed once its progress file records two
    uploaded parts of the open ``.rec`` (the second shard's when sharded); the invariants are
    checked.  Returns the bucket, the checkpoint and an uninterrupted run's objects."""
    root, lst = images
    client = server.client()
    bucket = f"up{os.getpid()}-{random.randrange(1 << 30)}"
    client.create_bucket(Bucket=bucket)
    _finish(_small_parts_pack(lst, root, f"s3://{bucket}/ref/train", server, resume=False, pause=0,
                              shard_records=shard_records))
    reference = _outputs(server, bucket, "ref")
    opened = 1 if shard_records else 0

    def open_upload() -> dict | None:
        try:
            raw = client.get_object(Bucket=bucket, Key="out/train.progress.json")["Body"].read()
        except client.exceptions.NoSuchKey:
            return None
        state = json.loads(raw)["open"]
        if not state or "upload" not in state or state["number"] != opened or len(state["upload"]["parts"]) < 2:
            return None
        return state

    pause = 0.05 if server.name == "moto" else 0.01  # a few seconds for the list, and as many to pack it
    proc = _small_parts_pack(lst, root, f"s3://{bucket}/out/train", server, resume=False, pause=pause,
                             shard_records=shard_records)
    wait_until(proc, lambda: open_upload() is not None, "two parts of the open .rec uploaded")
    proc.kill()
    proc.communicate()
    state = open_upload()
    assert state is not None
    uploads = client.list_multipart_uploads(Bucket=bucket).get("Uploads", ())
    assert state["upload"]["upload_id"] in {u["UploadId"] for u in uploads}
    got = {k: v for k, v in _outputs(server, bucket, "out").items() if not k.startswith(".imgprep-uploads/")}
    seen = tmp_path / "seen"
    seen.mkdir()
    for name, data in got.items():
        (seen / name).write_bytes(data)
    check_invariants(got, reference, seen, mxnet)
    return bucket, state, reference


@pytest.mark.parametrize("shard_records", [0, 16], ids=["unsharded", "sharded"])
def test_s3_resume_continues_the_open_upload_from_its_parts(
    images, tmp_path: Path, moto_server: S3Server, mxnet, shard_records: int
) -> None:
    bucket, state, reference = _killed_inside_an_upload(images, tmp_path, moto_server, mxnet, shard_records)
    root, lst = images
    err = _finish(_small_parts_pack(lst, root, f"s3://{bucket}/out/train", moto_server, resume=True, pause=0,
                                    shard_records=shard_records))
    upload_id, parts = state["upload"]["upload_id"], state["upload"]["parts"]
    held = f"after the {sum(p['Size'] for p in parts)} bytes of its {len(parts)} parts"
    assert f"continuing upload {upload_id} {held}" in err  # the killed run's parts were not sent again
    assert _outputs(moto_server, bucket, "out") == reference  # byte-identical, no upload marker left
    assert not moto_server.client().list_multipart_uploads(Bucket=bucket).get("Uploads")


@pytest.fixture(scope="module")
def noise(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """200 incompressible 256x256 JPEGs (about 15 MiB packed: three SeaweedFS-sized parts)."""
    import numpy as np
    from PIL import Image

    root = tmp_path_factory.mktemp("noise")
    rng = np.random.default_rng(13)
    items = []
    for i in range(200):
        name = f"n{i:03d}.jpg"
        Image.fromarray(rng.integers(0, 255, (256, 256, 3), dtype=np.uint8)).save(root / name, quality=95)
        items.append(LstItem(i, (float(i % 3),), name))
    lst = root / "noise.lst"
    write_lst(lst, items)
    return root, lst


def test_seaweedfs_resume_continues_an_upload_of_5mib_parts(noise, tmp_path: Path, seaweed: S3Server, mxnet) -> None:
    bucket, state, reference = _killed_inside_an_upload(noise, tmp_path, seaweed, mxnet, 0)
    root, lst = noise
    err = _finish(_small_parts_pack(lst, root, f"s3://{bucket}/out/train", seaweed, resume=True, pause=0,
                                    shard_records=0))
    upload_id, parts = state["upload"]["upload_id"], state["upload"]["parts"]
    assert f"continuing upload {upload_id} after the {len(parts) * (5 << 20)} bytes of its {len(parts)} parts" in err
    assert _outputs(seaweed, bucket, "out") == reference
    assert not seaweed.client().list_multipart_uploads(Bucket=bucket).get("Uploads")


def test_s3_resume_refuses_records_that_do_not_continue_the_upload(images, tmp_path: Path, moto_server: S3Server,
                                                                   mxnet) -> None:
    root = tmp_path / "images"
    shutil.copytree(images[0], root)
    bucket, _, _ = _killed_inside_an_upload((root, images[1]), tmp_path, moto_server, mxnet, 0)
    # Other pictures under the same names: the list is the same, the records are not.
    for i, path in enumerate(sorted(p for p in root.rglob("*") if p.suffix in (".jpg", ".png"))):
        data = imgfactory.png(40, 30, seed=900 + i) if path.suffix == ".png" else imgfactory.jpeg(40, 30, seed=900 + i)
        path.write_bytes(data)
    proc = _small_parts_pack(root / "all.lst", root, f"s3://{bucket}/out/train", moto_server, resume=True, pause=0,
                             shard_records=0)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 1
    errors = [line for line in err.splitlines() if line.startswith("imgprep: error: ")]
    assert len(errors) == 1 and "Traceback" not in err, err
    assert f"s3://{bucket}/out/train.rec" in errors[0] and errors[0].endswith("; rerun without --resume")
    names = set(_outputs(moto_server, bucket, "out"))
    assert "train.rec" not in names and "train.idx" not in names and "train.dataset.json" not in names
    assert not moto_server.client().list_multipart_uploads(Bucket=bucket).get("Uploads")


@pytest.mark.parametrize("damage", ["aborted", "part replaced"])
def test_s3_resume_starts_the_shard_over_when_the_upload_cannot_continue(
    images, tmp_path: Path, moto_server: S3Server, mxnet, damage: str
) -> None:
    bucket, state, reference = _killed_inside_an_upload(images, tmp_path, moto_server, mxnet, 0)
    root, lst = images
    client = moto_server.client()
    upload_id = state["upload"]["upload_id"]
    if damage == "aborted":
        client.abort_multipart_upload(Bucket=bucket, Key="out/train.rec", UploadId=upload_id)
        why = f"its upload {upload_id} is no longer open (completed, aborted or expired)"
    else:
        client.upload_part(Bucket=bucket, Key="out/train.rec", UploadId=upload_id, PartNumber=2, Body=b"x" * 2048)
        why = f"part 2 of its upload {upload_id} differs from the checkpoint"
    err = _finish(_small_parts_pack(lst, root, f"s3://{bucket}/out/train", moto_server, resume=True, pause=0,
                                    shard_records=0))
    line = f"s3://{bucket}/out/train.rec: cannot continue the checkpointed upload: {why}; writing it again"
    assert line in err.splitlines()
    assert "continuing upload" not in err
    assert _outputs(moto_server, bucket, "out") == reference
    assert not client.list_multipart_uploads(Bucket=bucket).get("Uploads")


# --------------------------------------------------------------------------- the list as a stream


def test_index_set_dense_and_sparse() -> None:
    dense = IndexSet()
    assert all(dense.add(i) for i in range(100_000))
    assert not dense.add(500) and dense.repeated() is None
    sparse = IndexSet()
    rng = random.Random(3)
    values = rng.sample(range(1 << 40), 5000)
    assert all(sparse.add(v) for v in values)
    assert sparse.repeated() is None
    sparse.add(values[1234])
    assert sparse.repeated() == values[1234]


def test_list_stream_validates_once_and_reads_lazily(tmp_path: Path) -> None:
    a = tmp_path / "a.lst"
    a.write_text("3\t1\tx.jpg\n\n4\t0\ty.jpg\n")
    stream = ListStream([a], Storage())
    assert len(stream) == 2 and [i.index for i in stream] == [3, 4] == [i.index for i in stream]
    assert stream.ref.entries == 2 and len(stream.ref.sha256) == 64
    b = tmp_path / "b.lst"
    b.write_text("5\t1\tx.jpg\n6\t1\tz.jpg\n5\t0\ty.jpg\n")
    with pytest.raises(Exception, match=r"b\.lst:3: duplicate index 5 \(first on line 1\)"):
        ListStream([b], Storage())
    with pytest.raises(Exception, match=r"a\.lst: index 3 also appears in .*a\.lst"):
        ListStream([a, a], Storage())


def test_prepare_resume_keeps_a_committed_dataset_and_refuses_other_settings(images, tmp_path: Path) -> None:
    root, _ = images
    args = ("prepare", "folders", root, "-o", tmp_path / "p", "--split", "train=0.5,val=0.5", "-j", "1", "-q")
    first = run(*args, "--resize", "20")
    assert first.returncode == 0, first.stderr
    stamps = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "p").iterdir() if p.suffix in (".rec", ".idx")}
    assert sorted(stamps) == ["train.idx", "train.rec", "val.idx", "val.rec"]
    again = run(*args, "--resize", "20", "--resume")
    assert again.returncode == 0, again.stderr
    assert {n: (tmp_path / "p" / n).stat().st_mtime_ns for n in stamps} == stamps  # nothing rewritten
    other = run(*args, "--resize", "24", "--resume")
    assert other.returncode == 2
    assert "cannot resume, the earlier run differs (earlier != now): resize: 20 != 24" in other.stderr
