"""Test fixtures for the real S3 servers of :mod:`s3launch` (SeaweedFS and moto on loopback).

Import the fixtures explicitly: ``from s3servers import seaweed_fixture, moto_server_fixture``
(they register as ``seaweed`` / ``moto_server`` / ``bucket``; the ``_fixture`` names keep ruff's
F811 quiet).  A server that cannot start fails the test under ``make test``
(``IMGPREP_REQUIRE_REFERENCE=1``) and skips it elsewhere.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import reader_unavailable
from s3launch import (  # noqa: F401 - re-exported for the tests and benchmarks
    ACCESS_KEY,
    MOTO_PART_MIN,
    SECRET_KEY,
    S3Server,
    find_weed,
    free_port,
    server_env,
    start_moto,
    start_seaweed,
    stop,
)


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
    except (FileNotFoundError, RuntimeError) as exc:
        reader_unavailable(f"SeaweedFS cannot start: {exc}")
    with _server_env():
        yield server


@pytest.fixture(scope="session", name="moto_server")
def moto_server_fixture() -> Iterator[S3Server]:
    """moto's S3 server in a subprocess, with a 1 KiB multipart minimum for small-part tests."""
    try:
        server = _shared_server("moto")
    except RuntimeError as exc:
        reader_unavailable(f"moto's S3 server cannot start (pip install 'moto[server]'): {exc}")
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
