"""The index file a pickled dataset shares under /dev/shm: a parent killed with SIGKILL leaves it,
and the next process that opens a dataset removes it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from data_fixture import payloads, write_shards

from imgprep.data.index import _shared_folder

_SHARE = """
import pickle, sys, time
from imgprep.data import Dataset
ds = Dataset(sys.argv[1])
pickle.dumps(ds)  # what a spawned DataLoader worker gets: the offsets move into a shared file
print(ds.index._shared, flush=True)
time.sleep(600)
"""

_OPEN = """
import sys
from imgprep.data import Dataset
Dataset(sys.argv[1])
"""


def test_index_file_of_a_sigkilled_parent_is_removed_by_the_next_open(tmp_path: Path) -> None:
    prefix = tmp_path / "train"
    write_shards(prefix, payloads(6))
    proc = subprocess.Popen([sys.executable, "-c", _SHARE, str(prefix)], stdout=subprocess.PIPE, text=True)
    shared = Path(proc.stdout.readline().strip())
    assert shared.exists() and str(shared.parent) == (_shared_folder() or str(shared.parent))
    assert shared.name.startswith(f"imgprep-index-{proc.pid}-")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    assert shared.exists()  # no finalizer ran
    subprocess.run([sys.executable, "-c", _OPEN, str(prefix)], check=True, timeout=60)
    assert not shared.exists()


def test_a_live_owners_file_is_kept(tmp_path: Path) -> None:
    prefix = tmp_path / "train"
    write_shards(prefix, payloads(4))
    proc = subprocess.Popen([sys.executable, "-c", _SHARE, str(prefix)], stdout=subprocess.PIPE, text=True)
    try:
        shared = Path(proc.stdout.readline().strip())
        subprocess.run([sys.executable, "-c", _OPEN, str(prefix)], check=True, timeout=60)
        assert shared.exists()
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
    subprocess.run([sys.executable, "-c", _OPEN, str(prefix)], check=True, timeout=60)
    assert not shared.exists()
