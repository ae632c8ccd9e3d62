"""The image format on a real S3 server (SeaweedFS): kill -9 and --resume, readers during the run,
a killed rerun leaving the old channels whole, and server-side copies for pass-through."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import faultproxy
import imgfactory
import pytest
from faultproxy import FaultProxy
from s3servers import S3Server, seaweed_fixture  # noqa: F401 - fixture

from imgprep.formats import imageset
from imgprep.formats.lst import LstItem, parse_lines
from imgprep.imaging.spec import TransformSpec
from imgprep.packing.channels import write_images
from imgprep.packing.packer import PackOptions
from imgprep.storage.s3 import S3Tuning
from imgprep.storage.stores import Storage

pytestmark = pytest.mark.s3
REPO = Path(__file__).resolve().parent.parent
CLASSES = ["cat", "dog", "emu"]

# A prepare of the image format in its own process, each image PUT slowed a little so that the
# test can land a kill -9 among them (the pause the packer's tests inject, on the image upload).
WRITER = """
import json, sys, time
from imgprep.formats.lst import LstItem
from imgprep.imaging.spec import TransformSpec
from imgprep.packing import channel_writer
from imgprep.packing.channels import write_images
from imgprep.packing.packer import PackOptions
from imgprep.storage.s3 import S3Store
from imgprep.storage.stores import Storage

src, out, endpoint, resize, lists = sys.argv[1:6]
put = S3Store.put_whole
def slow(self, *args, **kwargs):
    time.sleep(0.05)
    return put(self, *args, **kwargs)
S3Store.put_whole = slow
channel_writer.IO_THREADS = 1  # one image at a time: the kill lands where the test wants it
lists = {k: [LstItem(i, tuple(l), p) for i, l, p in v] for k, v in json.load(open(lists)).items()}
write_images(lists, src, out, TransformSpec(resize=int(resize)),
             PackOptions(storage=Storage.from_options(endpoint_url=endpoint), num_workers=1))
"""


def make_lists(root: Path, per_class: int) -> dict[str, list[LstItem]]:
    files = imgfactory.class_tree(root, CLASSES, per_class, sizes=((40, 30), (32, 44)))
    items = [LstItem(i, (float(CLASSES.index(f.parent.name)),), f.relative_to(root).as_posix())
             for i, f in enumerate(files)]
    return {"train": items[::2], "val": items[1::2]}


def storage_for(endpoint: str) -> Storage:
    return Storage.from_options(endpoint_url=endpoint, tuning=S3Tuning(retry_max_backoff=0.05))


def run(lists: dict[str, list[LstItem]], src: str, out: str, endpoint: str, spec: TransformSpec,
        **options: Any) -> Any:
    return write_images(lists, src, out, spec, PackOptions(storage=storage_for(endpoint), **options))


def objects(server: S3Server, bucket: str, prefix: str) -> dict[str, bytes]:
    client = server.client()
    keys = [o["Key"] for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
            for o in page.get("Contents", ())]
    return {k[len(prefix):]: client.get_object(Bucket=bucket, Key=k)["Body"].read() for k in sorted(keys)}


def list_is_whole(client: Any, bucket: str, prefix: str, channel: str) -> str | None:
    """Read the channel's list as a training job would; the first named object missing, or None."""
    try:
        text = client.get_object(Bucket=bucket, Key=f"{prefix}{channel}_lst/{channel}.lst")["Body"].read()
    except client.exceptions.NoSuchKey:
        return None
    for item in parse_lines(text.decode().splitlines(keepends=True)):
        key = f"{prefix}{channel}/{item.path}"
        try:
            client.head_object(Bucket=bucket, Key=key)
        except Exception:  # noqa: BLE001 - any failure to find it is the finding
            return key
    return None


class Recorder:
    """The (operation, path) of every request through a FaultProxy."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[tuple[str, str]] = []
        real = faultproxy.operation

        def recording(method: str, path: str, headers: dict[str, str]) -> str:
            op = real(method, path, headers)
            self.calls.append((op, path.split("?", 1)[0]))
            return op

        monkeypatch.setattr(faultproxy, "operation", recording)

    def count(self, op: str, contains: str) -> int:
        return sum(1 for o, p in self.calls if o == op and contains in p)


@pytest.mark.parametrize("share", [0.2, 0.7], ids=["early", "late"])
def test_kill9_then_resume_uploads_only_the_rest_ends_byte_identical_and_keeps_old_channels(
    seaweed: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, share: float
) -> None:
    client = seaweed.client()
    bucket = f"imgkill{int(share * 100)}"
    client.create_bucket(Bucket=bucket)
    src = tmp_path / "src"
    lists = make_lists(src, 14)
    total = sum(len(v) for v in lists.values())
    out, ref = f"s3://{bucket}/out/", f"s3://{bucket}/ref/"
    run(lists, str(src), ref, seaweed.endpoint_url, TransformSpec(resize=24))  # uninterrupted, for comparison
    run(lists, str(src), out, seaweed.endpoint_url, TransformSpec(resize=16))  # the previous generation
    old = objects(seaweed, bucket, "out/")

    spec_file = tmp_path / "lists.json"
    spec_file.write_text(json.dumps({k: [[i.index, i.labels, i.path] for i in v] for k, v in lists.items()}))
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(src), out, seaweed.endpoint_url, "24", str(spec_file)],
                            cwd=REPO, env={**os.environ, "PYTHONWARNINGS": "ignore"}, stdin=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    missing: list[str] = []
    try:
        new_images = 0
        deadline = time.monotonic() + 120
        while new_images < total * share and time.monotonic() < deadline:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            for channel in ("train", "validation"):  # a reader during the run: every listed image is there
                found = list_is_whole(client, bucket, "out/", channel)
                if found:
                    missing.append(found)
            now = {k for k in objects_keys(client, bucket, "out/") if k not in old}
            new_images = sum(1 for k in now if k.startswith(("train/", "validation/")))
        proc.send_signal(signal.SIGKILL)
        proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
        if proc.stderr:
            proc.stderr.close()
    assert not missing
    assert 0 < new_images < total
    after_kill = objects(seaweed, bucket, "out/")
    assert {k: v for k, v in after_kill.items() if k in old} == old  # the old channels, whole
    for channel in ("train", "validation"):
        assert list_is_whole(client, bucket, "out/", channel) is None
        record = imageset.from_json(after_kill[f"_imgprep/{channel}.images.json"], channel)
        for entry in record.images:
            assert hashlib.md5(after_kill[f"{channel}/{entry.path}"]).hexdigest() == entry.md5
    present = sum(1 for k in after_kill if k not in old and k.startswith(("train/", "validation/")))

    recorder = Recorder(monkeypatch)
    with FaultProxy(seaweed.endpoint_url) as proxy:
        got = run(lists, str(src), out, proxy.url, TransformSpec(resize=24), resume=True)
    gens = {s.record.generation for s in got.values()}
    uploaded = sum(recorder.count("PutObject", f"/{g}/") for g in gens)
    assert uploaded == total - present  # what the killed run finished is not uploaded again
    assert sum(s.reused for s in got.values()) == present
    assert objects(seaweed, bucket, "out/") == objects(seaweed, bucket, "ref/")  # old generation gone too


def objects_keys(client: Any, bucket: str, prefix: str) -> list[str]:
    return [o["Key"][len(prefix):] for o in client.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", ())]


def test_pass_through_from_s3_copies_server_side_without_downloading_an_image(
    seaweed: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = seaweed.client()
    client.create_bucket(Bucket="imgcopy")
    src = tmp_path / "src"
    lists = make_lists(src, 4)
    for items in lists.values():
        for item in items:
            client.put_object(Bucket="imgcopy", Key=f"src/{item.path}", Body=(src / item.path).read_bytes())
    recorder = Recorder(monkeypatch)
    with FaultProxy(seaweed.endpoint_url) as proxy:
        got = run(lists, "s3://imgcopy/src", "s3://imgcopy/out/", proxy.url, TransformSpec(pass_through=True))
    assert recorder.count("GetObject", "/imgcopy/src/") == 0  # zero image downloads
    assert recorder.count("CopyObject", "/imgcopy/out/") == sum(len(v) for v in lists.values())
    assert recorder.count("PutObject", "/imgcopy/out/train/") == 0
    written = objects(seaweed, "imgcopy", "out/")
    for split, channel in (("train", "train"), ("val", "validation")):
        record = got[split].record
        for item, entry in zip(lists[split], record.images, strict=True):
            data = written[f"{channel}/{entry.path}"]
            assert data == (src / item.path).read_bytes() and entry.md5 == hashlib.md5(data).hexdigest()
    again = run(lists, "s3://imgcopy/src", "s3://imgcopy/out/", seaweed.endpoint_url, TransformSpec(pass_through=True))
    assert sum(s.copied for s in again.values()) == 0  # a rerun finds every copy in place


def test_uploads_stay_within_the_upload_budget_and_run_concurrently(seaweed: S3Server, tmp_path: Path) -> None:
    client = seaweed.client()
    client.create_bucket(Bucket="imgbudget")
    lists = make_lists(tmp_path / "src", 6)
    storage = Storage.from_options(endpoint_url=seaweed.endpoint_url, upload_memory=4096)
    in_flight, peak = [0], [0]
    lock = threading.Lock()
    real = type(storage.s3).put_whole

    def counting(self: Any, *args: Any, **kwargs: Any) -> None:
        with lock:
            in_flight[0] += 1
            peak[0] = max(peak[0], in_flight[0])
        try:
            time.sleep(0.02)
            real(self, *args, **kwargs)
        finally:
            with lock:
                in_flight[0] -= 1

    type(storage.s3).put_whole = counting  # type: ignore[method-assign]
    try:
        write_images(lists, str(tmp_path / "src"), "s3://imgbudget/out/", TransformSpec(resize=20),
                     PackOptions(storage=storage, num_workers=1))
    finally:
        type(storage.s3).put_whole = real  # type: ignore[method-assign]
    assert peak[0] > 1  # concurrent requests, though one worker transforms
    budget = storage.s3.budget
    biggest = max(len(v) for k, v in objects(seaweed, "imgbudget", "out/").items() if k.startswith("train/"))
    assert 0 < budget.peak <= 4096 + biggest and budget.used == 0  # drawn from the store's budget, all given back


def test_prepare_format_images_to_s3_writes_manifests_of_the_objects_and_verifies(
    seaweed: S3Server, tmp_path: Path
) -> None:
    import imgprep.api as api
    from imgprep.verify.images import verify_images

    client = seaweed.client()
    client.create_bucket(Bucket="imgprep3")
    imgfactory.class_tree(tmp_path / "src", CLASSES, 4)
    storage = storage_for(seaweed.endpoint_url)
    api.prepare("folders", tmp_path / "src", "s3://imgprep3/out/", output_format="images", resize=20,
                storage=storage)
    written = objects(seaweed, "imgprep3", "out/")
    for line in written["validation.manifest"].decode().splitlines():
        ref = json.loads(line)["source-ref"]
        assert ref.startswith("s3://imgprep3/out/validation/") and ref[len("s3://imgprep3/out/"):] in written
    report = verify_images("s3://imgprep3/out/", storage, channel_settings=True)
    assert report.ok and report.records == 12
    uris = [e["DataSource"]["S3DataSource"]["S3Uri"] for e in report.channel["images"]]
    assert uris == ["s3://imgprep3/out/train/", "s3://imgprep3/out/train_lst/",
                    "s3://imgprep3/out/validation/", "s3://imgprep3/out/validation_lst/"]
    assert [e["ChannelName"] for e in report.channel["manifest"]] == ["train", "validation"]
