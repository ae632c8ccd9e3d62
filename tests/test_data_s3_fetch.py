"""The training reader's S3 reads (loopback SeaweedFS): coalesced ranged reads give the local bytes
in fewer requests; a frozen endpoint is an error within the store's bound; Ctrl-C ends a reader
stuck on it with a plain KeyboardInterrupt."""

from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from data_fixture import digest, payloads, write_shards
from s3servers import S3Server, seaweed_fixture, server_env  # noqa: F401 - fixture

from imgprep.data import Dataset, Loader, Transform
from imgprep.data.fetch import Fetcher, plan
from imgprep.errors import ChangedError, StorageError
from imgprep.storage.stores import Storage
from imgprep.storage.threads import DaemonExecutor

pytestmark = pytest.mark.s3


@pytest.fixture(scope="module")
def remote(seaweed: S3Server, tmp_path_factory) -> tuple[str, Path]:
    local = tmp_path_factory.mktemp("s3fetch") / "train"
    write_shards(local, payloads(48), per_shard=20)
    client = seaweed.client()
    client.create_bucket(Bucket="fetch")
    for path in sorted(local.parent.iterdir()):
        client.put_object(Bucket="fetch", Key=f"data/{path.name}", Body=path.read_bytes())
    return "s3://fetch/data/train", local


def test_plan_coalesces_neighbours_within_the_gap_and_span() -> None:
    starts = np.array([500, 0, 100, 10_000, 10_050])
    ends = np.array([600, 100, 200, 10_050, 10_100])
    assert plan(starts, ends, gap=300, span=1000) == [(0, 600, [1, 2, 0]), (10_000, 10_100, [3, 4])]
    assert plan(starts, ends, gap=0, span=1000) == [(0, 200, [1, 2]), (500, 600, [0]), (10_000, 10_100, [3, 4])]
    assert plan(starts, ends, gap=300, span=150) == [(0, 100, [1]), (100, 200, [2]), (500, 600, [0]),
                                                     (10_000, 10_100, [3, 4])]  # 150 bytes at most


def test_coalesced_s3_reads_equal_local_bytes_in_fewer_requests(seaweed: S3Server, remote: tuple[str, Path]) -> None:
    uri, local = remote
    there = Dataset(uri, storage=Storage.from_options(endpoint_url=seaweed.endpoint_url))
    here = Dataset(str(local))
    chosen = [47, 3, 2, 30, 31, 29, 0, 19, 20, 5, 5]  # across shard ends, out of order, one twice
    pool = DaemonExecutor(4, "test-fetch")
    fetcher = Fetcher(pool)
    got = [p.result() for p in fetcher.submit([(there, i) for i in chosen])]
    pool.shutdown(wait=False)
    for i, (rid, label, image) in zip(chosen, got):
        mine = here.record(i)
        assert (rid, label, bytes(image)) == (mine[0], mine[1], bytes(mine[2]))
    assert fetcher.stats.records == len(chosen) and fetcher.stats.requests == 3  # one per shard
    # A whole eval epoch (file order) from S3: the local pixels, far fewer requests than records.
    a = Loader(Dataset(str(local), transform=Transform.eval(16)), batch_size=8, shuffle=False, threads=1)
    b = Loader(Dataset(uri, transform=Transform.eval(16), storage=Storage.from_options(
        endpoint_url=seaweed.endpoint_url)), batch_size=8, shuffle=False, threads=2)
    assert [digest(x.images) for x in a] == [digest(x.images) for x in b]
    assert b.stats.records == 48 and b.stats.requests <= 48 // 8 + 2


def test_read_ahead_windows_coalesce_more_within_read_bytes_and_keep_the_pixels(seaweed: S3Server, remote) -> None:
    uri, local = remote
    storage = Storage.from_options(endpoint_url=seaweed.endpoint_url)

    def epoch(**kw: int) -> tuple[list, Loader]:
        loader = Loader(Dataset(uri, transform=Transform.train(16), seed=4, storage=storage), batch_size=4,
                        threads=2, prefetch=1, **kw)
        return [(x.ids.tolist(), digest(x.images)) for x in loader], loader

    here = [(x.ids.tolist(), digest(x.images)) for x in Loader(Dataset(str(local), transform=Transform.train(16),
                                                                       seed=4), batch_size=4, threads=1)]
    wide, wide_loader = epoch(read_ahead=8)
    narrow, narrow_loader = epoch(read_ahead=1)
    capped, capped_loader = epoch(read_ahead=8, read_bytes=0)  # every window cut to one batch
    assert wide == narrow == capped == here
    assert wide_loader.stats.requests < narrow_loader.stats.requests <= capped_loader.stats.requests
    assert wide_loader.stats.records == narrow_loader.stats.records == 48


class _Listener:
    """A loopback TCP server that hands each connection to ``_serve`` on a thread of its own."""

    def __init__(self) -> None:
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            conn, _ = self._sock.accept()
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        raise NotImplementedError


class Freezer(_Listener):
    """A TCP relay to the S3 server that, once frozen, forwards nothing more either way (a silent
    endpoint with its connections open), so requests on pooled connections stall too."""

    def __init__(self, upstream: str) -> None:
        host, port = upstream.rsplit("//", 1)[1].split(":")
        self.upstream = (host, int(port))
        self.frozen = threading.Event()
        super().__init__()

    def _serve(self, conn: socket.socket) -> None:
        up = socket.create_connection(self.upstream)
        for a, b in ((conn, up), (up, conn)):
            threading.Thread(target=self._relay, args=(a, b), daemon=True).start()

    def _relay(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                while self.frozen.is_set():
                    time.sleep(0.05)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass


class SlowAndBroken(_Listener):
    """An endpoint that drops a request for the range from byte 0 at once and answers any other
    only by closing it after ``delay`` seconds: one range of a call fails while another is in flight."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.slow_answered = 0
        super().__init__()

    def _serve(self, conn: socket.socket) -> None:
        head = conn.recv(65536).lower()
        if b"range: bytes=0-" not in head:
            time.sleep(self.delay)
            self.slow_answered += 1
        conn.close()


def test_a_failed_range_waits_for_its_siblings_so_none_is_left_in_flight(seaweed: S3Server) -> None:
    from imgprep.storage import s3_ranges

    endpoint = SlowAndBroken(delay=1.0)
    storage = Storage.from_options(endpoint_url=endpoint.url, max_attempts=1, read_timeout=5, connect_timeout=5)
    with pytest.raises(StorageError, match="ranged read failed"):
        s3_ranges.get_ranges(storage.s3, "s3://fetch/x.rec", [(0, 10), (100, 110)], version='"etag"')
    assert endpoint.slow_answered == 1  # the slow sibling was awaited, not left running
    assert not s3_ranges.asyncio.all_tasks(s3_ranges._loop())


_STUCK = """
import sys
from imgprep.data import Dataset, Loader, Transform
from imgprep.storage.stores import Storage
storage = Storage.from_options(endpoint_url=sys.argv[2], **eval(sys.argv[3]))
ds = Dataset(sys.argv[1], transform=Transform.train(16), storage=storage)
print("opened", flush=True)
sys.stdin.readline()
print("reading", flush=True)
for batch in Loader(ds, batch_size=8, threads=2):
    pass
"""


def _stuck_reader(uri: str, freezer: Freezer, options: dict) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", _STUCK, uri, freezer.url, repr(options)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **server_env()})
    assert proc.stdout.readline().strip() == "opened", proc.stderr.read()
    freezer.frozen.set()
    proc.stdin.write("go\n")
    proc.stdin.flush()
    assert proc.stdout.readline().strip() == "reading"
    return proc


def test_a_frozen_endpoint_is_one_storage_error_within_the_bound(seaweed: S3Server, remote) -> None:
    freezer = Freezer(seaweed.endpoint_url)
    proc = _stuck_reader(remote[0], freezer, dict(read_timeout=1, connect_timeout=1, max_attempts=2))
    _, err = proc.communicate(timeout=60)
    assert proc.returncode != 0
    last = err.strip().splitlines()[-1]
    assert last.startswith("imgprep.errors.StorageError") and "s3://fetch/data/train-0000" in last, err
    assert StorageError.__name__ in last and ("5 s" in last or "ranged read failed" in last)


def test_ctrl_c_ends_a_reader_stuck_on_s3_with_a_plain_keyboard_interrupt(seaweed: S3Server, remote) -> None:
    freezer = Freezer(seaweed.endpoint_url)
    proc = _stuck_reader(remote[0], freezer, {})  # default timeouts: minutes before S3 would give up
    select.select([], [], [], 0.5)  # let the reads go out and stall
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=20)  # a guard against a hang, not a measurement
    assert proc.returncode != 0
    assert err.strip().splitlines()[-1] == "KeyboardInterrupt", err
    assert "StorageError" not in err and "obstore" not in err and "botocore" not in err


def test_a_dataloader_batch_from_s3_reads_together_and_equals_one_by_one(seaweed: S3Server, remote) -> None:
    ds = Dataset(remote[0], transform=Transform.train(16), seed=6,
                 storage=Storage.from_options(endpoint_url=seaweed.endpoint_url))
    keys = [(i, 2) for i in (40, 3, 4, 5, 21, 3)]
    together = ds.__getitems__(keys)  # what torch's DataLoader calls for a batch
    alone = [ds[key] for key in keys]
    assert [(*digest(np.stack([im])), label) for im, label in together] == \
        [(*digest(np.stack([im])), label) for im, label in alone]


def test_reads_pinned_to_an_etag_fail_once_the_shard_is_replaced(seaweed: S3Server, tmp_path: Path) -> None:
    local = tmp_path / "pinned"
    write_shards(local, payloads(6))
    client = seaweed.client()
    client.create_bucket(Bucket="pinned")
    rec = local.with_suffix(".rec")
    for path in (rec, local.with_suffix(".idx")):
        client.put_object(Bucket="pinned", Key=path.name, Body=path.read_bytes())
    uri = "s3://pinned/pinned.rec"
    ds = Dataset("s3://pinned/pinned", storage=Storage.from_options(endpoint_url=seaweed.endpoint_url))
    ds.versions = {uri: client.head_object(Bucket="pinned", Key="pinned.rec")["ETag"]}  # what the reader pins
    fetcher = Fetcher(None)
    assert [p.result()[0] for p in fetcher.submit([(ds, 0), (ds, 5)])] == [10_000, 10_005]
    client.put_object(Bucket="pinned", Key="pinned.rec", Body=rec.read_bytes()[:-4] + b"\0\0\0\1")  # republished
    with pytest.raises(ChangedError, match="changed since it was opened"):
        fetcher.submit([(ds, 0), (ds, 5)])[0].result()


_FORKED = """
import sys, torch
sys.path.insert(0, sys.argv[3])
from data_fixture import digest
from imgprep.data import Dataset, Sampler, Transform
from imgprep.storage.stores import Storage
ds = Dataset(sys.argv[1], transform=Transform.train(16), seed=3, storage=Storage.from_options(endpoint_url=sys.argv[2]))
ds[0]  # obstore used in the parent before the workers fork
out = []
for workers in (0, 2):
    dl = torch.utils.data.DataLoader(ds, batch_size=8, sampler=Sampler(ds), num_workers=workers,
                                     multiprocessing_context="fork" if workers else None)
    out.append([d for images, _ in dl for d in digest(images.numpy())])
print(out[0] == out[1], len(out[1]))
"""


def test_forked_dataloader_workers_read_s3_after_the_parent_used_obstore(seaweed: S3Server, remote) -> None:
    # obstore's runtime does not survive a fork: a forked worker must not wait on it forever.
    proc = subprocess.run([sys.executable, "-c", _FORKED, remote[0], seaweed.endpoint_url, str(Path(__file__).parent)],
                          capture_output=True, text=True, timeout=180, env={**os.environ, **server_env()})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["True", "48"]
