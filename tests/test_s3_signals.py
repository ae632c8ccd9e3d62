"""Killed writers: SIGTERM aborts cleanly; SIGKILL leaves an upload that cleanup or the next run removes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from s3servers import S3Server, seaweed_fixture  # noqa: F401 - fixture

from imgprep.cli.s3cmds import cleanup
from imgprep.storage import Storage
from imgprep.storage.s3_multipart import marker_key

pytestmark = pytest.mark.s3
REPO = Path(__file__).resolve().parent.parent

# The packer installs the same SIGTERM -> KeyboardInterrupt handler.
WRITER = """
import os, signal, sys, time
from imgprep.storage import Storage

def on_term(signum, frame):
    raise KeyboardInterrupt

signal.signal(signal.SIGTERM, on_term)
uri, endpoint = sys.argv[1:3]
chunk = os.urandom(1 << 20)
try:
    with Storage.from_options(endpoint_url=endpoint, part_size=5 << 20).open_output(uri) as out:
        while True:
            out.write(chunk)
            time.sleep(0.01)
except KeyboardInterrupt:
    sys.exit(130)
"""


def start_writer(server: S3Server, uri: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.Popen([sys.executable, "-c", WRITER, uri, server.endpoint_url], cwd=REPO, env=env,
                            stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)


def wait_for_parts(server: S3Server, bucket: str, key: str, proc: subprocess.Popen[bytes]) -> dict[str, Any]:
    """Block until the writer's upload has at least two parts stored; return the upload."""
    client = server.client()
    for _ in range(600):
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        for upload in client.list_multipart_uploads(Bucket=bucket, Prefix=key).get("Uploads", []):
            parts = client.list_parts(Bucket=bucket, Key=key, UploadId=upload["UploadId"]).get("Parts", [])
            if len(parts) >= 2:
                return upload
        time.sleep(0.05)
    raise AssertionError("the writer never got two parts up")


def state(server: S3Server, bucket: str) -> tuple[list[str], list[str]]:
    client = server.client()
    ups = [u["Key"] for u in client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])]
    objs = sorted(o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", []))
    return ups, objs


def kill(proc: subprocess.Popen[bytes], sig: int) -> int:
    proc.send_signal(sig)
    try:
        code = proc.wait(60)
    finally:
        if proc.stderr:
            proc.stderr.close()
    return code


def test_sigterm_aborts_the_upload(seaweed: S3Server) -> None:
    seaweed.client().create_bucket(Bucket="sigterm")
    proc = start_writer(seaweed, "s3://sigterm/out/train.rec")
    wait_for_parts(seaweed, "sigterm", "out/train.rec", proc)
    assert kill(proc, signal.SIGTERM) == 130
    assert state(seaweed, "sigterm") == ([], [])  # no upload, no object, no marker


def test_sigkill_leftover_is_removed_by_cleanup_only(seaweed: S3Server) -> None:
    client = seaweed.client()
    client.create_bucket(Bucket="sigkill")
    proc = start_writer(seaweed, "s3://sigkill/out/train.rec")
    upload = wait_for_parts(seaweed, "sigkill", "out/train.rec", proc)
    assert kill(proc, signal.SIGKILL) == -signal.SIGKILL
    marker = marker_key("out/train.rec", upload["UploadId"])
    assert state(seaweed, "sigkill") == (["out/train.rec"], [marker])

    # Someone else's upload under the same prefix (no marker) and a live imgprep writer (this process).
    foreign = client.create_multipart_upload(Bucket="sigkill", Key="out/foreign.bin")["UploadId"]
    store = Storage.from_options(endpoint_url=seaweed.endpoint_url, part_size=5 << 20)
    live = store.open_output("s3://sigkill/out/live.rec")
    live.write(b"x" * (5 << 20))  # one full part: the upload now exists
    try:
        result = CliRunner().invoke(
            cleanup, ["s3://sigkill/out/", "--endpoint-url", seaweed.endpoint_url], catch_exceptions=False
        )
        assert result.exit_code == 0
        assert f"aborted s3://sigkill/out/train.rec ({upload['UploadId']})" in result.output
        uploads, objects = state(seaweed, "sigkill")
        assert sorted(uploads) == ["out/foreign.bin", "out/live.rec"]
        assert all(".imgprep-uploads/train.rec" not in o for o in objects)
    finally:
        live.abort()
        client.abort_multipart_upload(Bucket="sigkill", Key="out/foreign.bin", UploadId=foreign)
    assert state(seaweed, "sigkill") == ([], [])


def test_sigkill_leftover_is_removed_by_the_next_run(seaweed: S3Server) -> None:
    seaweed.client().create_bucket(Bucket="nextrun")
    uri = "s3://nextrun/train.rec"
    proc = start_writer(seaweed, uri)
    wait_for_parts(seaweed, "nextrun", "train.rec", proc)
    kill(proc, signal.SIGKILL)
    assert state(seaweed, "nextrun")[0] == ["train.rec"]
    with Storage.from_options(endpoint_url=seaweed.endpoint_url).open_output(uri) as out:
        out.write(b"fresh")
    assert state(seaweed, "nextrun") == ([], ["train.rec"])
    assert Storage.from_options(endpoint_url=seaweed.endpoint_url).read_bytes(uri) == b"fresh"


def test_cleanup_of_a_local_folder_removes_only_temporaries(tmp_path: Path) -> None:
    (tmp_path / ".train.rec.abc123.part").write_bytes(b"x")
    (tmp_path / "train.rec").write_bytes(b"kept")
    result = CliRunner().invoke(cleanup, [str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train.rec"]
