"""One writer per output: what a lock holds, how its holder is described, and the refusal.

Each :class:`~imgprep.storage.base.Store` takes a lock its own way (``flock`` on a local file, a
conditional PutObject on S3); the body written into the lock and the message naming its holder
are shared here so both schemes say the same thing.
"""

from __future__ import annotations

import abc
import json
import os
import time

from imgprep.errors import StorageError

HOST = os.uname().nodename  # socket.gethostname()'s answer, without loading socket


class OtherWriterError(StorageError):
    """Another run holds the output's lock."""


class Lock(abc.ABC):
    """A taken lock; :meth:`release` gives it up (only if it is still ours)."""

    @abc.abstractmethod
    def release(self) -> None: ...


def lock_body() -> bytes:
    """Who holds the lock: this host, this process, since when."""
    return json.dumps({"host": HOST, "pid": os.getpid(), "started": round(time.time(), 3)}).encode()


def holder(raw: bytes) -> str:
    try:
        info = json.loads(raw)
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info["started"]))
        return f"pid {info['pid']} on {info['host']}, started {started}"
    except (ValueError, KeyError, TypeError):
        return "holder unknown"


def dead_here(raw: bytes) -> bool:
    """A lock written by a process of this host that no longer runs."""
    try:
        info = json.loads(raw)
        if info["host"] != HOST:
            return False
        os.kill(int(info["pid"]), 0)
    except ProcessLookupError:
        return True
    except (ValueError, KeyError, TypeError, PermissionError, OSError):
        return False
    return False
