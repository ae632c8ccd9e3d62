"""Nothing lost, second round: a failing rerun keeps the previous dataset, every writer keeps the
invariants, ``prepare`` commits as a whole, the S3 lock is exclusive, verify checks what it is given.

Everything goes through public faces (the CLI in a subprocess, ``imgprep.pack``), so that what is
checked is what a user sees.  "Byte-identical" means every file under the output folder, hidden
ones included: a failing run must not have touched the previous generation at all.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import imgfactory
import pytest
from s3servers import S3Server, moto_server_fixture, seaweed_fixture  # noqa: F401 - fixtures

import imgprep
from imgprep.api import write_lst
from imgprep.errors import UsageError
from imgprep.formats.lst import LstItem

CLASSES = ["ant", "bee", "cow"]
PACK = ("--resize", "20", "-j", "1", "-q")


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("images")
    files = imgfactory.class_tree(root, CLASSES, 8, png_every=5)
    items = [LstItem(i, (float(CLASSES.index(f.parent.name)),), str(f.relative_to(root))) for i, f in enumerate(files)]
    lst = root / "all.lst"
    write_lst(lst, items)
    return root, lst


def _pause(delay: float) -> str:
    """Python that widens the publication windows of the process it runs in (see test_publish.start)."""
    return (f"import time; from imgprep.packing.publish import Publisher; "
            f"Publisher.pause = staticmethod(lambda: time.sleep({delay!r}))\n") if delay else ""


def start(*args: object, delay: float = 0.0) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-c", _pause(delay) + "from imgprep.cli.main import main; main()", *(str(a) for a in args)]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ),
                            stdin=subprocess.DEVNULL)


def run(*args: object, delay: float = 0.0) -> subprocess.CompletedProcess[str]:
    proc = start(*args, delay=delay)
    out, err = proc.communicate(timeout=300)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (hidden ones too), by relative name."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def wait_for(proc: subprocess.Popen[str], ready, what: str) -> None:
    deadline = time.monotonic() + 120  # a hang guard, not a speed claim
    while not ready():
        if proc.poll() is not None:
            pytest.fail(f"the run ended before {what}: {proc.stderr.read() if proc.stderr else ''}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"never reached {what}")
        time.sleep(0.005)


def _packed(tmp_path: Path, images, *extra: object) -> tuple[Path, dict[str, bytes]]:
    root, lst = images
    out = tmp_path / "out"
    done = run("pack", lst, "--root", root, "-o", out / "train", *PACK, *extra)
    assert done.returncode == 0, done.stderr
    before = snapshot(out)
    assert "train.dataset.json" in before
    return out, before


# --------------------------------------------------------------------------- 1. a failing rerun costs nothing


@pytest.mark.parametrize("sharded", [False, True], ids=["unsharded", "sharded"])
def test_rerun_with_a_mistyped_root_keeps_the_previous_dataset(images, tmp_path: Path, sharded: bool) -> None:
    root, lst = images
    extra = ("--shard-records", "5") if sharded else ()
    out, before = _packed(tmp_path, images, *extra)
    again = run("pack", lst, "--root", str(root) + "-typo", "-o", out / "train", *PACK, *extra)
    assert again.returncode != 0
    assert "root" in again.stderr and len(again.stderr.strip().splitlines()) == 1, again.stderr
    assert snapshot(out) == before


def test_rerun_with_a_root_holding_none_of_the_images_keeps_the_previous_dataset(images, tmp_path: Path) -> None:
    _, lst = images
    out, before = _packed(tmp_path, images, "--shard-records", "5")
    empty = tmp_path / "empty"
    empty.mkdir()
    again = run("pack", lst, "--root", empty, "-o", out / "train", *PACK, "--shard-records", "5")
    assert again.returncode == 1
    assert len(again.stderr.strip().splitlines()) == 1, again.stderr
    assert snapshot(out) == before


@pytest.mark.parametrize(("option", "value"), [
    ("resize", 256.0), ("resize", True), ("quality", 90.5), ("size", (64.5, 64)), ("num_workers", 2.0),
    ("shard_records", 1.5), ("color", False), ("strict", 1), ("max_pixels", 1e6),
])
def test_api_refuses_wrong_types_naming_the_argument_before_touching_the_output(
    images, tmp_path: Path, option: str, value: object
) -> None:
    root, lst = images
    out, before = _packed(tmp_path, images)
    with pytest.raises(UsageError, match=rf"^{option}\b.*{type(value).__name__}"):
        imgprep.pack(str(lst), root=str(root), output=str(out / "train"), **{"num_workers": 1, option: value})
    assert snapshot(out) == before


_POOL = """
import multiprocessing, sys
import imgprep

def work(args):
    lst, root, out = args
    try:
        summary = imgprep.pack(lst, root=root, output=out, resize=20, native=False, num_workers=2)
    except imgprep.ImgprepError as exc:
        return "error: " + str(exc)
    return f"ok {summary.records} {summary.executor}"

if __name__ == "__main__":
    with multiprocessing.get_context("fork").Pool(1) as pool:
        print(pool.map(work, [sys.argv[1:]])[0])
"""


def test_pack_in_a_daemonic_pool_worker_uses_threads(images, tmp_path: Path) -> None:
    root, lst = images
    out, _ = _packed(tmp_path, images)
    done = subprocess.run([sys.executable, "-c", _POOL, str(lst), str(root), str(out / "train")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok 24 thread", done.stdout + done.stderr


def test_failing_prepare_rerun_keeps_the_previous_output(images, tmp_path: Path) -> None:
    root, _ = images
    out = tmp_path / "p"
    args = ("prepare", "folders", root, "-o", out, "--split", "train=0.5,val=0.5", "--dedup", "off", "-j", "1", "-q")
    first = run(*args, "--resize", "20")
    assert first.returncode == 0, first.stderr
    before = snapshot(out)
    # A root that exists and holds the class folders, but whose images are all unreadable.
    broken = tmp_path / "broken"
    for cls in CLASSES:
        (broken / cls).mkdir(parents=True)
        for i in range(8):
            (broken / cls / f"{i}.jpg").write_bytes(b"not a jpeg")
    again = run("prepare", "folders", broken, *args[3:], "--resize", "20")
    assert again.returncode == 1, again.stderr
    assert snapshot(out) == before


# --------------------------------------------------------------------------- 2. every writer keeps the invariants


def test_merge_retires_the_old_index_before_publishing_the_new_rec(images, tmp_path: Path) -> None:
    """At the instant the merged ``.rec`` is published, no ``.idx`` of an earlier merge is beside it."""
    from imgprep.layout.merge import merge_shards
    from imgprep.storage.stores import Storage

    root, lst = images
    out = tmp_path / "out"
    for resize in ("20", "24"):
        done = run("pack", lst, "--root", root, "-o", out / f"s{resize}", "--resize", resize, "-j", "1", "-q",
                   "--shard-records", "5")
        assert done.returncode == 0, done.stderr
    merge_shards(str(out / "s20"), str(out / "all"), Storage())
    old_idx = (out / "all.idx").read_bytes()

    seen: list[bytes | None] = []

    class Spy(Storage):
        def open_output(self, uri, **kwargs):
            output = super().open_output(uri, **kwargs)
            if uri.endswith("all.rec"):
                commit = output.commit

                def spying_commit() -> None:
                    commit()
                    idx = out / "all.idx"
                    seen.append(idx.read_bytes() if idx.exists() else None)

                output.commit = spying_commit
            return output

    merge_shards(str(out / "s24"), str(out / "all"), Spy())
    assert old_idx and seen == [None], "the new all.rec was published beside the old all.idx"


def _lst_ids(path: Path) -> list[int]:
    return [int(line.split("\t")[0]) for line in path.read_text().splitlines()]


def _idx_ids(path: Path) -> list[int]:
    return [int(line.split("\t")[0]) for line in path.read_text().splitlines()]


def test_prepare_killed_rerun_never_mixes_generations_and_resume_finishes_it(images, tmp_path: Path) -> None:
    root, _ = images
    out = tmp_path / "p"
    base = ("prepare", "folders", root, "--split", "train=0.5,val=0.5", "--dedup", "off", "-j", "1", "-q",
            "--resize", "20", "--shard-records", "3")
    first = run(*base, "-o", out, "--seed", "0")
    assert first.returncode == 0, first.stderr
    ref = tmp_path / "ref"
    fresh = run(*base, "-o", ref, "--seed", "1")
    assert fresh.returncode == 0, fresh.stderr

    proc = start(*base, "-o", out, "--seed", "1", delay=0.5)
    # Killed while train is packed: its first new shard is published, val is not reached.
    wait_for(proc, lambda: (out / "train.progress.json").exists(), "the new train shard")
    proc.kill()
    proc.communicate()
    for split in ("train", "val"):
        lst, record = out / f"{split}.lst", out / f"{split}.dataset.json"
        if lst.exists() and record.exists():
            shards = json.loads(record.read_text())["shards"]
            ids = [i for s in shards for i in _idx_ids(out / s["idx"])]
            assert ids == _lst_ids(lst), f"{split}.lst is beside another generation's records"

    other = run(*base, "-o", out, "--seed", "2", "--resume")
    assert other.returncode == 2
    assert "seed" in other.stderr and len(other.stderr.strip().splitlines()) == 1, other.stderr

    done = run(*base, "-o", out, "--seed", "1", "--resume")
    assert done.returncode == 0, done.stderr
    got = {k: v for k, v in snapshot(out).items() if not k.startswith(".")}
    assert got == {k: v for k, v in snapshot(ref).items() if not k.startswith(".")}


# --------------------------------------------------------------------------- 4. the S3 lock is exclusive

# One taker: imports and connects, says it is ready, waits for "go", then packs (the winner holds
# the lock through the widened publication windows, long after every taker has tried).
_TAKER = """
import os, sys, time
import imgprep
lst, root, out, endpoint, sync = sys.argv[1:]
storage = imgprep.Storage.from_options(endpoint_url=endpoint)
storage.exists(out + ".rec")  # the client made and connected before the start
open(os.path.join(sync, f"ready-{os.getpid()}"), "w").close()
while not os.path.exists(os.path.join(sync, "go")):
    time.sleep(0.001)
try:
    imgprep.pack(lst, root=root, output=out, resize=20, num_workers=1, storage=storage)
except imgprep.ImgprepError as exc:
    sys.exit("error: " + str(exc))
print("packed")
"""
TAKERS = 4


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.mark.parametrize("server_name", ["seaweed", "moto_server"])
def test_simultaneous_takeovers_of_a_stale_s3_lock_exactly_one_proceeds(images, request, server_name: str,
                                                                       tmp_path: Path) -> None:
    import socket

    root, lst = images
    server: S3Server = request.getfixturevalue(server_name)
    bucket = f"lock{os.getpid()}-{random.randrange(1 << 30)}"
    client = server.client()
    client.create_bucket(Bucket=bucket)
    for trial in range(2):
        stale = {"host": socket.gethostname(), "pid": _dead_pid(), "started": time.time() - 60}
        client.put_object(Bucket=bucket, Key=f"t{trial}/train.lock", Body=json.dumps(stale).encode())
        sync = tmp_path / f"sync{trial}"
        sync.mkdir()
        takers = [subprocess.Popen([sys.executable, "-c", _pause(0.5) + _TAKER, str(lst), str(root),
                                    f"s3://{bucket}/t{trial}/train", server.endpoint_url, str(sync)],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(TAKERS)]
        deadline = time.monotonic() + 120  # a hang guard, not a speed claim
        while len(list(sync.glob("ready-*"))) < TAKERS and time.monotonic() < deadline:
            time.sleep(0.01)
        (sync / "go").touch()  # every taker is waiting: they reach the stale lock together
        results = [(p.wait(300), *p.communicate()) for p in takers]
        winners = [r for r in results if r[0] == 0]
        assert len(winners) == 1, results
        for code, _, err in results:
            if code:
                assert "another run" in err, err
        assert not client.list_objects_v2(Bucket=bucket, Prefix=f"t{trial}/train.lock").get("Contents")


# --------------------------------------------------------------------------- 5. verify checks what it is given


def test_verify_checks_the_file_named_not_the_shards_of_its_record(images, tmp_path: Path) -> None:
    out, _ = _packed(tmp_path, images, "--shard-records", "5")
    merged = run("merge", out / "train", "-o", out / "train")
    assert merged.returncode == 0, merged.stderr
    good = run("verify", out / "train.rec")
    assert good.returncode == 0, good.stdout + good.stderr
    data = bytearray((out / "train.rec").read_bytes())
    data[len(data) // 2: len(data) // 2 + 64] = bytes(64)
    (out / "train.rec").write_bytes(bytes(data))
    bad = run("verify", out / "train.rec")
    assert bad.returncode == 1, bad.stdout
    assert "train.rec" in bad.stdout
    whole = run("verify", out / "train.dataset.json")  # the record's shards are still whole
    assert whole.returncode == 0, whole.stdout + whole.stderr


@pytest.mark.parametrize("case", ["progress without record", "gap", "rec without idx"])
def test_verify_without_a_record_refuses_what_merge_refuses(images, tmp_path: Path, case: str) -> None:
    out, _ = _packed(tmp_path, images, "--shard-records", "5")
    record = out / "train.dataset.json"
    if case == "progress without record":
        (out / "train.progress.json").write_text(record.read_text())
        record.unlink()
        expected = "train.progress.json"
    elif case == "gap":
        record.unlink()
        (out / "train-00002.rec").unlink()
        (out / "train-00002.idx").unlink()
        expected = "train-00002.rec"
    else:
        record.unlink()
        (out / "train-00003.idx").unlink()
        expected = "train-00003.idx"
    merge = run("merge", out / "train", "-o", out / "all")
    assert merge.returncode != 0, merge.stderr
    verify = run("verify", out / "train")
    assert verify.returncode == 1, verify.stdout + verify.stderr
    lines = verify.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], verify.stderr


# --------------------------------------------------------------------------- 6. cleanup, leftovers, names


def test_s3_cleanup_honours_a_live_writer_lock_on_another_host(seaweed: S3Server) -> None:
    bucket = f"clean{os.getpid()}-{random.randrange(1 << 30)}"
    client = seaweed.client()
    client.create_bucket(Bucket=bucket)
    live = {"host": "another-host.example", "pid": 1, "started": time.time()}
    client.put_object(Bucket=bucket, Key="d/train.lock", Body=json.dumps(live).encode())
    upload = client.create_multipart_upload(Bucket=bucket, Key="d/train.rec")["UploadId"]
    from imgprep.storage.s3_cleanup import marker_key

    client.put_object(Bucket=bucket, Key=marker_key("d/train.rec", upload), Body=b"",
                      Metadata={"imgprep-host": "another-host.example", "imgprep-pid": "1"})
    done = run("cleanup", f"s3://{bucket}/d/", "--min-age", "0", "--endpoint-url", seaweed.endpoint_url)
    assert done.returncode == 0, done.stderr
    uploads = client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    assert [u["UploadId"] for u in uploads] == [upload], "a live writer's upload was aborted"
    assert "lock" in done.stderr, done.stderr


def test_cleanup_and_rerun_remove_the_marker_of_a_completed_upload(images, seaweed: S3Server) -> None:
    root, lst = images
    bucket = f"mark{os.getpid()}-{random.randrange(1 << 30)}"
    client = seaweed.client()
    client.create_bucket(Bucket=bucket)
    from imgprep.storage.s3_cleanup import marker_key

    # What a kill -9 after CompleteMultipartUpload and before the marker's deletion leaves.
    for key in ("d/train.rec", "e/train.rec"):
        client.put_object(Bucket=bucket, Key=marker_key(key, "completed-upload-id"), Body=b"",
                          Metadata={"imgprep-host": "h", "imgprep-pid": str(_dead_pid())})
    done = run("cleanup", f"s3://{bucket}/d/", "--min-age", "0", "--endpoint-url", seaweed.endpoint_url)
    assert done.returncode == 0, done.stderr
    rerun = run("pack", lst, "--root", root, "-o", f"s3://{bucket}/e/train", *PACK,
                "--endpoint-url", seaweed.endpoint_url)
    assert rerun.returncode == 0, rerun.stderr
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert not [k for k in keys if ".imgprep-uploads/" in k], keys


def test_resume_after_a_kill_between_rec_and_idx_leaves_no_temporary(images, tmp_path: Path) -> None:
    root, lst = images
    out = tmp_path / "out"
    args = ("pack", lst, "--root", root, "-o", out / "train", *PACK, "--shard-records", "5",
            "--checkpoint-every", "1")
    proc = start(*args, delay=1)
    wait_for(proc, lambda: (out / "train-00001.rec").exists() and not (out / "train-00001.idx").exists(),
             "a .rec published without its index")
    proc.kill()
    proc.communicate()
    done = run(*args, "--resume")
    assert done.returncode == 0, done.stderr
    assert not [p.name for p in out.iterdir() if p.name.endswith(".part")]


def test_an_output_name_too_long_for_its_temporaries_is_refused_before_any_work(images, tmp_path: Path) -> None:
    root, lst = images
    name = "t" * 230  # train.dataset.json's temporary would pass NAME_MAX (255 bytes)
    done = run("pack", lst, "--root", root, "-o", tmp_path / name, *PACK)
    assert done.returncode == 2, done.stderr
    assert "too long" in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(name) or p.name.startswith("." + name)]


def test_convert_refuses_wrong_types_naming_the_argument(images, tmp_path: Path) -> None:
    root, _ = images
    for option, value in (("seed", 1.5), ("seed", True), ("train_per_class", 2.0), ("shuffle", 1)):
        with pytest.raises(UsageError, match=rf"^{option}\b"):
            imgprep.convert("folders", str(root), str(tmp_path / "lists"), dedup="off", **{option: value})
    assert not (tmp_path / "lists").exists()


def test_resume_of_a_committed_dataset_needs_no_images(images, tmp_path: Path) -> None:
    """The image check runs under the lock, after --resume found the dataset already committed."""
    _, lst = images
    out, before = _packed(tmp_path, images)
    empty = tmp_path / "moved"
    empty.mkdir()
    again = run("pack", lst, "--root", empty, "-o", out / "train", *PACK, "--resume")
    assert again.returncode == 0, again.stderr
    assert snapshot(out) == before


def test_prepare_rerun_without_a_split_leaves_none_of_its_files(images, tmp_path: Path) -> None:
    root, _ = images
    out = tmp_path / "p"
    base = ("prepare", "folders", root, "-o", out, "--dedup", "off", "-j", "1", "-q", "--resize", "20")
    first = run(*base, "--split", "train=0.5,val=0.25,test=0.25")
    assert first.returncode == 0, first.stderr
    again = run(*base, "--split", "train=0.5,val=0.5")
    assert again.returncode == 0, again.stderr
    assert not [name for name in snapshot(out) if name.startswith("test")]
