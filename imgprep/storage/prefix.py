"""The files of one output prefix, local or ``s3://``: every storage call publication makes.

:mod:`imgprep.packing.publish` decides *when* to list, remove, check or write; this module only
does it, for a local folder or an S3 prefix, so the publication rules exist once.  Names are
whole URIs (local paths or ``s3://bucket/key``); ``names()`` returns those that belong to the
prefix (``PREFIX.rec``, ``PREFIX-00000.idx``, ``PREFIX.dataset.json``, ...), not a neighbour
such as ``PREFIX2.rec``.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import socket
import time
from collections.abc import Collection
from typing import Any

from imgprep.errors import StorageError
from imgprep.storage.base import Store, is_remote

# Everything a pack writes under PREFIX; group 1 is the shard number, if any.
_OWNED = re.compile(r"(?:-(\d{5,}))?\.(rec|idx|dataset\.json|progress\.json|skipped\.tsv)$")
_CHUNK = 8 << 20
HOST = socket.gethostname()


class OtherWriterError(StorageError):
    """Another run holds the output's lock."""


class Prefix:
    """The output prefix ``PREFIX`` and the storage calls that publication needs, through ``storage``."""

    def __init__(self, prefix: str, storage: Store) -> None:
        self.prefix = prefix
        self.remote = is_remote(prefix)
        self.storage = storage
        self._lock_fd: int | None = None
        self._lock_body = b""

    # ------------------------------------------------------------------ listing and removing

    def names(self) -> list[str]:
        """URIs under the prefix that a pack of it writes, sorted."""
        return sorted(e.uri for e in self.storage.list(self.prefix) if _OWNED.fullmatch(e.uri[len(self.prefix):]))

    def temporaries(self) -> list[str]:
        """Local ``.NAME.*.part`` files that writers of this prefix's names left (kill -9)."""
        if self.remote:
            return []
        folder, base = os.path.split(self.prefix)
        out = []
        for path in glob_parts(folder or "."):
            final = os.path.basename(path)[1:].rsplit(".", 2)[0]  # .NAME.random.part -> NAME
            if final.startswith(base) and _OWNED.fullmatch(final[len(base):]):
                out.append(path)
        return sorted(out)

    def remove(self, uri: str) -> None:
        """Delete ``uri``; a missing one is fine."""
        self.storage.delete(uri)

    def abort_uploads(self, keep: Collection[str] = ()) -> list[str]:
        """Abort imgprep's unfinished multipart uploads of this prefix's names (the lock is ours),
        except the upload ids in ``keep``."""
        if not self.remote:
            return []
        from imgprep.storage.s3 import boto_errors, parse_s3_uri, storage_error
        from imgprep.storage.s3_cleanup import abort_owned

        s3 = self._s3()
        bucket, key = parse_s3_uri(self.prefix)
        keys = sorted({u["Key"] for u in s3.list_uploads(self.prefix) if _OWNED.fullmatch(u["Key"][len(key):])})
        aborted = []
        try:
            for name in keys:
                done = abort_owned(s3.client, bucket, name, exact=True, started_before=time.time(), min_age=0,
                                   keep=keep)
                aborted += [f"s3://{bucket}/{k}" for k, _ in done]
        except boto_errors() as exc:
            raise storage_error(self.prefix, "aborting stale uploads", exc) from None
        return aborted

    def _s3(self) -> Any:
        """The S3 store behind ``storage`` (a :class:`Storage` routes by scheme)."""
        return getattr(self.storage, "s3", self.storage)

    # ------------------------------------------------------------------ small files and checks

    def read(self, uri: str) -> bytes | None:
        """A small file's bytes, or None when it does not exist."""
        if not self.storage.exists(uri):
            return None
        return self.storage.read_bytes(uri)

    def write(self, uri: str, data: bytes) -> None:
        """Write a small file atomically (temporary name + rename, or one PutObject)."""
        self.storage.write_bytes(uri, data)

    def exists(self, uri: str) -> bool:
        return self.storage.exists(uri)

    def size(self, uri: str) -> int | None:
        return self.storage.size(uri) if self.storage.exists(uri) else None

    def sha256(self, uri: str) -> str:
        """SHA-256 of a whole file, streamed."""
        digest = hashlib.sha256()
        with self.storage.open_read(uri) as fh:
            while chunk := fh.read(_CHUNK):
                digest.update(chunk)
        return digest.hexdigest()

    # ------------------------------------------------------------------ one writer

    def lock(self) -> None:
        """Take the output's lock or fail at once naming its holder.

        Local: ``fcntl.flock`` on ``PREFIX.lock`` (released by the kernel when the holder dies).
        S3: PutObject of ``PREFIX.lock`` with ``If-None-Match: *``, which S3 (since 2024),
        SeaweedFS and moto refuse with 412 when the object exists; a lock left by a killed run
        on this host (its pid is gone) is taken over, anything else is named and refused.
        """
        body = json.dumps({"host": HOST, "pid": os.getpid(), "started": round(time.time(), 3)}).encode()
        uri = self.prefix + ".lock"
        if self.remote:
            self._lock_s3(uri, body, retry=True)
            self._lock_body = body  # only once taken: unlock() must not touch another run's lock
        else:
            self._lock_local(uri, body)

    def _lock_local(self, path: str, body: bytes) -> None:
        folder = os.path.dirname(os.path.abspath(path))
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as exc:
            # FileExistsError here means a file stands where a folder of the output must be
            reason = "a file is in the way" if isinstance(exc, FileExistsError) else exc.strerror
            raise StorageError(f"cannot create the output folder ({reason})", path=folder) from None
        while True:
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
            except OSError as exc:
                raise StorageError(f"cannot write this output ({exc.strerror}: its lock file "
                                   f"{os.path.basename(path)} could not be created)", path=self.prefix) from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 4096, 0)
                os.close(fd)
                raise OtherWriterError(f"another run is writing this output ({_holder(holder)}); "
                                       "wait for it or stop it", path=self.prefix) from None
            # The holder before us may have removed the file after we opened it: lock the file
            # that is at the path now, or another run could lock a second one.
            try:
                same = os.fstat(fd).st_ino == os.stat(path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        self._lock_fd = fd
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, body, 0)
        except OSError as exc:
            self.unlock()
            raise StorageError(f"cannot write this output ({exc.strerror}: its lock file "
                               f"{os.path.basename(path)} could not be written)", path=self.prefix) from None

    def _lock_s3(self, uri: str, body: bytes, retry: bool) -> None:
        from imgprep.storage.s3 import boto_errors, error_code, parse_s3_uri, storage_error

        bucket, key = parse_s3_uri(uri)
        client = self._s3().client
        try:
            client.put_object(Bucket=bucket, Key=key, Body=body, IfNoneMatch="*")
            return
        except boto_errors() as exc:
            if error_code(exc) not in ("PreconditionFailed", "412", "ConditionalRequestConflict"):
                error = storage_error(self.prefix, "writing this output", exc)
                raise StorageError(f"{error.message} (its lock object {uri.rsplit('/', 1)[-1]} could not be "
                                   "written)", path=self.prefix) from None
        holder = self.read(uri) or b""
        if retry and _dead_here(holder):
            self.remove(uri)
            return self._lock_s3(uri, body, retry=False)
        raise OtherWriterError(f"another run is writing this output ({_holder(holder)}); wait for it, or "
                               f"remove {uri} if that run is gone", path=self.prefix)

    def unlock(self) -> None:
        uri = self.prefix + ".lock"
        if self.remote:
            if self._lock_body and self.read(uri) == self._lock_body:
                self.remove(uri)
            self._lock_body = b""
            return
        if self._lock_fd is not None:
            try:
                os.unlink(uri)  # while still holding it: see _lock_local for the race this closes
            except OSError:
                pass
            os.close(self._lock_fd)
            self._lock_fd = None


def _holder(raw: bytes) -> str:
    try:
        info = json.loads(raw)
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info["started"]))
        return f"pid {info['pid']} on {info['host']}, started {started}"
    except (ValueError, KeyError, TypeError):
        return "holder unknown"


def _dead_here(raw: bytes) -> bool:
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


def cleanup_local(path: str, storage: Store) -> list[str]:
    """Remove the temporary files interrupted packs left under a local prefix or folder.

    A prefix whose lock another run holds is being written: its temporary files are live and
    are left alone.  Published shards and progress files stay (``pack --resume`` uses them).
    """
    if os.path.isdir(path):
        finals = {os.path.join(path, os.path.basename(p)[1:].rsplit(".", 2)[0])
                  for p in glob_parts(path)}
        prefixes = {_OWNED.sub("", final) for final in finals if _OWNED.search(final)}
    else:
        prefixes = {path}
    removed: list[str] = []
    for prefix in sorted(prefixes):
        store = Prefix(prefix, storage)
        try:
            store.lock()
        except OtherWriterError:
            continue
        try:
            for uri in store.temporaries():
                store.remove(uri)
                removed.append(uri)
        finally:
            store.unlock()
    return removed


def glob_parts(folder: str) -> list[str]:
    import glob

    return glob.glob(os.path.join(glob.escape(folder), ".*.part"))
