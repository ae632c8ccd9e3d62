"""Local files: written under a temporary name and renamed into place only when complete."""

from __future__ import annotations

import fcntl
import glob
import mmap
import os
import shutil
import tempfile
from collections.abc import Iterator
from typing import IO, BinaryIO

from imgprep.errors import ChangedError, StorageError, UsageError
from imgprep.formats.paths import check_regular
from imgprep.storage.base import Entry, Output, Store
from imgprep.storage.images import LocalImageSource
from imgprep.storage.locks import Lock, OtherWriterError, holder, lock_body


def local_path(uri: str | os.PathLike[str]) -> str:
    text = os.fspath(uri)
    return text[len("file://") :] if text.startswith("file://") else text


_DIRECT = 64 << 10  # writes this large skip the file object's buffer (LocalOutput._write_direct)


class LocalOutput(Output):
    """A local file that appears under its name only on :meth:`commit` (``os.replace``)."""

    def __init__(
        self, uri: str | os.PathLike[str], *, fsync: bool = False, reopen: tuple[str, int] | None = None
    ) -> None:
        self.path = local_path(uri)
        self.uri = self.path
        self._fsync = fsync
        directory = os.path.dirname(os.path.abspath(self.path))
        try:
            if reopen is None:
                os.makedirs(directory, exist_ok=True)
                fd, self._tmp = tempfile.mkstemp(
                    prefix=f".{os.path.basename(self.path)}.", suffix=".part", dir=directory
                )
            else:
                self._tmp = os.path.join(directory, reopen[0])
                fd = os.open(self._tmp, os.O_WRONLY)
                os.ftruncate(fd, reopen[1])
                os.lseek(fd, reopen[1], os.SEEK_SET)
        except OSError as exc:
            raise StorageError(f"cannot create output file ({exc.strerror})", path=self.path) from None
        self._fh = os.fdopen(fd, "wb", buffering=1 << 20)
        self.bytes_written = reopen[1] if reopen else 0
        self._done = False

    def checkpoint(self) -> str:
        """Flush to the kernel (a killed process loses nothing written); the temporary's name."""
        try:
            self._fh.flush()
        except OSError as exc:
            raise StorageError(f"write failed ({exc.strerror})", path=self.path) from None
        return os.path.basename(self._tmp)

    def write(self, data: bytes | bytearray | memoryview) -> int:
        try:
            view = memoryview(data)
            n = self._fh.write(view) if view.nbytes < _DIRECT else self._write_direct(view)
        except OSError as exc:
            raise StorageError(f"write failed ({exc.strerror})", path=self.path) from None
        self.bytes_written += n
        return n

    def _write_direct(self, data: memoryview) -> int:
        """A large write (the packer's chunk of records) goes to the file from the caller's
        buffer: the file object's own buffer would take a copy of it first whenever it fits
        (one more pass over every byte of a ``.rec``, on the packer's serial thread)."""
        self._fh.flush()
        view = data.cast("B") if data.format != "B" or data.ndim != 1 else data
        fd, at = self._fh.fileno(), 0
        while at < len(view):
            at += os.write(fd, view[at:])
        return at

    def commit(self) -> None:
        if self._done:
            return
        try:
            self._fh.flush()
            if self._fsync:
                os.fsync(self._fh.fileno())
            self._fh.close()
            os.chmod(self._tmp, 0o666 & ~_umask())
            os.replace(self._tmp, self.path)
        except OSError as exc:
            self.abort()
            raise StorageError(f"cannot finish output file ({exc.strerror})", path=self.path) from None
        self._done = True

    def abort(self) -> None:
        """Remove the temporary file.  Never raises: closing flushes the buffer, which fails
        again on a full disk, and the error that made us abort is the one to report."""
        if self._done:
            return
        self._done = True
        try:
            self._fh.close()
        except OSError:
            pass
        try:
            os.unlink(self._tmp)
        except OSError:
            pass


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _version(st: os.stat_result) -> str:
    """A local file's generation: a rename over it changes the inode, a rewrite the size or mtime."""
    return f"{st.st_size}-{st.st_mtime_ns}-{st.st_ino}"


class _RangeReader:
    """Bytes ``[start, end)`` of a local file, read sequentially."""

    def __init__(self, path: str, fh: IO[bytes], remaining: int | None) -> None:
        self.path = path
        self._fh = fh
        self._remaining = remaining

    def read(self, n: int = -1) -> bytes:
        if self._remaining is not None:
            n = self._remaining if n < 0 else min(n, self._remaining)
        try:
            data = self._fh.read(n)
        except OSError as exc:
            raise StorageError(f"read failed ({exc.strerror})", path=self.path) from None
        if self._remaining is not None:
            self._remaining -= len(data)
        return data

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> _RangeReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class LocalStore(Store):
    """Local paths (and ``file://`` URIs).  ``fsync``: flush outputs to disk before renaming them."""

    def __init__(self, *, fsync: bool = False) -> None:
        self.fsync = fsync

    def open_output(self, uri: str, *, expected_size: int | None = None, content_type: str | None = None) -> Output:
        return LocalOutput(uri, fsync=self.fsync)

    def reopen_output(self, uri: str, where: str, size: int) -> Output | None:
        tmp = os.path.join(os.path.dirname(os.path.abspath(local_path(uri))), where)
        if os.sep in where or not where.endswith(".part") or not os.path.isfile(tmp) or os.path.getsize(tmp) < size:
            return None
        return LocalOutput(uri, fsync=self.fsync, reopen=(where, size))

    def probe(self, uri: str, *, write: bool, images: bool = False) -> None:
        """An output folder that cannot be made (a file where a folder must be) fails now: prepare's
        duplicate pass would otherwise read every image before the first write found out."""
        if not write:
            return
        path = local_path(uri)
        folder = os.path.abspath(path if path.endswith(("/", os.sep)) else os.path.dirname(path) or ".")
        existing = folder
        while not os.path.lexists(existing):
            existing = os.path.dirname(existing)
        if not os.path.isdir(existing):
            raise StorageError("cannot create the output folder (a file is in the way)", path=folder)

    def read_bytes(self, uri: str) -> bytes:
        path = local_path(uri)
        check_regular(path)  # a FIFO planted as OUT.progress.json would block, /dev/zero never end
        try:
            with open(path, "rb") as fh:
                return fh.read()
        except OSError as exc:
            raise StorageError(f"cannot read ({exc.strerror})", path=path) from None

    def open_read(self, uri: str, start: int = 0, end: int | None = None, *,
                  version: str | None = None) -> IO[bytes]:
        path = local_path(uri)
        check_regular(path)
        try:
            fh = open(path, "rb")  # noqa: SIM115 - closed by the reader
            # the open file is the generation read from here on, whatever is renamed over the path
            found = _version(os.fstat(fh.fileno())) if version is not None else None
            fh.seek(start)
        except OSError as exc:
            raise StorageError(f"cannot read ({exc.strerror})", path=path) from None
        if found != version:
            fh.close()
            raise ChangedError(f"changed since it was opened for reading (size-mtime-inode {found}, was {version})",
                               path=path)
        return _RangeReader(path, fh, None if end is None else max(end - start, 0))  # type: ignore[return-value]

    def version(self, uri: str) -> str:
        path = local_path(uri)
        try:
            return _version(os.stat(path))
        except OSError as exc:
            raise StorageError(f"cannot find file ({exc.strerror})", path=path) from None

    def exists(self, uri: str) -> bool:
        return os.path.exists(local_path(uri))

    def size(self, uri: str) -> int:
        path = local_path(uri)
        try:
            return os.path.getsize(path)
        except OSError as exc:
            raise StorageError(f"cannot find file ({exc.strerror})", path=path) from None

    def list(self, prefix: str) -> Iterator[Entry]:
        path = local_path(prefix)
        found: list[Entry] = []
        for name in glob.glob(glob.escape(path) + "*"):
            if os.path.isdir(name):
                for parent, _, files in os.walk(name):
                    found.extend(self._entry(os.path.join(parent, f)) for f in files)
            elif os.path.isfile(name):
                found.append(self._entry(name))
        return iter(sorted(e for e in found if e.uri.startswith(path)))

    @staticmethod
    def _entry(path: str) -> Entry:
        return Entry(path, os.path.getsize(path))

    def delete(self, uri: str) -> None:
        path = local_path(uri)
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise StorageError(f"cannot delete ({exc.strerror})", path=path) from None

    def delete_tree(self, uri: str) -> None:
        shutil.rmtree(local_path(uri), ignore_errors=True)

    def prune(self, uri: str) -> None:
        try:
            os.rmdir(local_path(uri))
        except OSError:
            pass

    def replace(self, source: str, target: str) -> None:
        try:
            os.replace(local_path(source), local_path(target))
        except OSError as exc:
            raise StorageError(f"cannot move to {target} ({exc.strerror})", path=source) from None

    def image_source(self, root: str) -> LocalImageSource:
        return LocalImageSource(local_path(root))

    def is_file(self, uri: str) -> bool:
        return os.path.isfile(local_path(uri))

    def open_seekable(self, uri: str) -> BinaryIO:
        """The file itself (OS errors reach the caller, who names what it was reading)."""
        path = local_path(uri)
        check_regular(path)
        return open(path, "rb")

    def read_view(self, uri: str, start: int, end: int) -> memoryview:
        """The bytes mapped, not read: the mapping starts on the page boundary below ``start``."""
        if end <= start:
            return memoryview(b"")
        base = start - start % mmap.ALLOCATIONGRANULARITY
        with open(local_path(uri), "rb") as fh:
            mapped = mmap.mmap(fh.fileno(), end - base, access=mmap.ACCESS_READ, offset=base)
        return memoryview(mapped)[start - base:]

    def canonical(self, uri: str) -> str:
        return os.path.realpath(local_path(uri))

    def local_path(self, uri: str) -> str | None:
        return local_path(uri)

    def lock(self, uri: str, *, owner: str) -> Lock:
        """``fcntl.flock`` on ``uri`` (released by the kernel when the holder dies)."""
        return _FileLock(local_path(uri), owner)

    def check_name(self, uri: str) -> None:
        """The temporary ``.NAME.XXXXXXXX.part`` a file is written under must fit ``NAME_MAX``."""
        folder, name = os.path.split(os.path.abspath(local_path(uri)))
        need = len(f".{name}.XXXXXXXX.part".encode())
        limit = _name_max(folder)
        if need > limit:
            raise UsageError(f"output name too long: its temporary files need names of {need} bytes, a file "
                             f"name in this folder may have {limit}; choose a shorter output", path=uri)

    def temporaries(self, prefix: str) -> list[tuple[str, str]]:
        """The ``.NAME.random.part`` files :class:`LocalOutput` writes, for NAMEs starting with
        ``prefix``'s last component (all of a folder's when ``prefix`` ends with ``/``)."""
        folder, base = os.path.split(local_path(prefix))
        out = []
        for path in glob.glob(os.path.join(glob.escape(folder or "."), ".*.part")):
            final = os.path.basename(path)[1:].rsplit(".", 2)[0]  # .NAME.random.part -> NAME
            if final.startswith(base):
                out.append((path, os.path.join(folder, final)))
        return sorted(out)


def _name_max(folder: str) -> int:
    """NAME_MAX of the file system holding ``folder`` (or its nearest existing ancestor)."""
    while folder and not os.path.isdir(folder):
        folder = os.path.dirname(folder)
    try:
        return os.pathconf(folder or ".", "PC_NAME_MAX")
    except (OSError, ValueError):
        return 255


class _FileLock(Lock):
    def __init__(self, path: str, owner: str) -> None:
        self.path = path
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
                                   f"{os.path.basename(path)} could not be created)", path=owner) from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                held = os.pread(fd, 4096, 0)
                os.close(fd)
                raise OtherWriterError(f"another run is writing this output ({holder(held)}); "
                                       "wait for it or stop it", path=owner) from None
            # The holder before us may have removed the file after we opened it: lock the file
            # that is at the path now, or another run could lock a second one.
            try:
                same = os.fstat(fd).st_ino == os.stat(path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        self._fd: int | None = fd
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, lock_body(), 0)
        except OSError as exc:
            self.release()
            raise StorageError(f"cannot write this output ({exc.strerror}: its lock file "
                               f"{os.path.basename(path)} could not be written)", path=owner) from None

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            os.unlink(self.path)  # while still holding it: see __init__ for the race this closes
        except OSError:
            pass
        os.close(self._fd)
        self._fd = None
