"""An S3 endpoint that accepts connections and never answers: a run fails within its stated bound
(``max_attempts × read_timeout`` + backoff, then ``abort_timeout``), and SIGTERM ends it within 5 s."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from s3servers import server_env

from imgprep.api import write_lst
from imgprep.formats.lst import LstItem

pytestmark = pytest.mark.s3
REPO = Path(__file__).resolve().parent.parent


class SilentEndpoint:
    """Accepts TCP connections on loopback, reads nothing, answers nothing."""

    def __init__(self) -> None:
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self.held: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            self.held.append(conn)

    def wait_for_connection(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not self.held:
            assert time.monotonic() < deadline, "the run never connected"
            time.sleep(0.02)

    def close(self) -> None:
        self._sock.close()
        for conn in self.held:
            conn.close()


@pytest.fixture
def silent() -> Iterator[SilentEndpoint]:
    endpoint = SilentEndpoint()
    yield endpoint
    endpoint.close()


def fake_jpegs(folder: Path, count: int, size: int) -> Path:
    """Files that pass the pass-through signature check (SOI ... EOI); ``size`` bytes each."""
    folder.mkdir()
    items = []
    for i in range(count):
        (folder / f"{i}.jpg").write_bytes(b"\xff\xd8\xff\xe0" + os.urandom(size - 6) + b"\xff\xd9")
        items.append(LstItem(i, (0.0,), f"{i}.jpg"))
    lst = folder.parent / "all.lst"
    write_lst(lst, items)
    return lst


def env(silent: SilentEndpoint) -> dict[str, str]:
    return {**os.environ, **server_env(), "AWS_ENDPOINT_URL": silent.url, "PYTHONWARNINGS": "ignore"}


API_RUN = """
import sys, imgprep
from imgprep.storage.s3 import S3Tuning
try:
    imgprep.pack(sys.argv[1], root=sys.argv[2], output=sys.argv[3], pass_through=True, num_workers=1,
                 quiet=True, storage_options=dict(read_timeout=1, connect_timeout=1, max_attempts=2,
                                                  tuning=S3Tuning(retry_max_backoff=0.1), abort_timeout=1))
except imgprep.ImgprepError as exc:
    print(exc, file=sys.stderr)
    sys.exit(1)
"""
# 2 attempts × 1 s read timeout + ≤ 0.2 s backoff, then ≤ 1 s of abort; the rest is interpreter start.
API_BOUND = 2 * 1 + 0.2 + 1 + 15


@pytest.mark.parametrize("where", ["output", "images"])
def test_silent_endpoint_fails_the_run_within_the_bound(silent: SilentEndpoint, tmp_path: Path, where: str) -> None:
    lst = fake_jpegs(tmp_path / "img", 3, 1000)
    root, output = str(tmp_path / "img"), "s3://bucket/out/train"
    if where == "images":
        root, output = "s3://bucket/img", str(tmp_path / "train")
    run = subprocess.run([sys.executable, "-c", API_RUN, str(lst), root, output], env=env(silent),
                         capture_output=True, text=True, timeout=API_BOUND)
    assert run.returncode == 1, run.stderr
    message = run.stderr.strip()
    assert "\n" not in message
    # A run's first request is the probe of its S3 locations, which names the location.
    expected = ("s3://bucket/img: cannot read this location: the endpoint does not answer" if where == "images"
                else "s3://bucket/out/train: cannot write under this location: the endpoint does not answer")
    assert message.startswith(expected), message
    assert not list(tmp_path.glob("train*")), "nothing is published by a failed run"


@pytest.mark.parametrize(("count", "size"), [(3, 1000), (7, 1 << 20)], ids=["put", "multipart"])
def test_sigterm_ends_a_run_stuck_on_a_silent_endpoint(
    silent: SilentEndpoint, tmp_path: Path, count: int, size: int
) -> None:
    """Default timeouts (20 s reads, 5 attempts): only the signal can end the run this early."""
    lst = fake_jpegs(tmp_path / "img", count, size)
    cmd = [sys.executable, "-c", "import sys; from imgprep.cli.main import main; main(sys.argv[1:])",
           "pack", str(lst), "--root", str(tmp_path / "img"), "-o", "s3://bucket/out/train", "--pass-through",
           "--part-size", "5MiB", "-q"]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env(silent), stdin=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    try:
        silent.wait_for_connection()
        time.sleep(0.3)  # now inside the first request: the probe of the output
        assert proc.poll() is None
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=5)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.stderr is not None
    with proc.stderr:
        stderr = proc.stderr.read()
    assert code == 130, stderr
    assert "interrupted" in stderr
