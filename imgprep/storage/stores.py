"""The storage a run uses: one :class:`Store` per scheme behind one object, built at the faces.

A run may read images from S3 and write locally, or merge local shards into S3, so the layers
get a :class:`Storage` that hands each URI to its scheme's store — the table lives here and
nowhere else: every method, locks and leftovers of killed writers included, only routes.  The
S3 store (and its client) is made on the first ``s3://`` URI, and its module is imported then:
a local run never loads it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Iterator
from typing import IO, TYPE_CHECKING, Any, BinaryIO

from imgprep.errors import UsageError
from imgprep.storage.base import Cleanup, Entry, Output, Store, scheme
from imgprep.storage.images import ImageSource
from imgprep.storage.local import LocalStore
from imgprep.storage.locks import Lock
from imgprep.storage.s3_config import S3Config

if TYPE_CHECKING:
    from imgprep.storage.s3 import S3Store, S3Tuning


class Storage(Store):
    """Local paths, ``file://`` and ``s3://`` through one interface."""

    def __init__(self, s3: S3Config | S3Store | None = None, *, local: LocalStore | None = None,
                 tuning: S3Tuning | None = None) -> None:
        self.local = local or LocalStore()
        self._tuning = tuning  # tests against loopback servers only (see S3Tuning)
        self._s3: S3Store | None = None
        if s3 is None or isinstance(s3, S3Config):
            self._s3_config = s3 or S3Config()
        else:  # a store already built
            self._s3, self._s3_config = s3, s3.config
        self._lock = threading.Lock()

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled as its settings: a process that unpickles it (a training reader's spawned worker)
        builds its own clients on first use."""
        return (Storage, (self._s3_config,), {"local": self.local, "_tuning": self._tuning})

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.local, self._tuning = state["local"], state["_tuning"]

    @classmethod
    def from_options(cls, **options: Any) -> Storage:
        """From user options by name: ``fsync`` for local files, the rest :class:`S3Config` fields
        (and ``tuning``, an :class:`S3Tuning`, for tests).

        ``None`` means "default"; an unknown name is a :class:`UsageError`.
        """
        fsync = bool(options.pop("fsync", False))
        tuning = options.pop("tuning", None)
        return cls(S3Config.from_options(options), local=LocalStore(fsync=fsync), tuning=tuning)

    @property
    def s3(self) -> S3Store:
        with self._lock:
            if self._s3 is None:
                from imgprep.storage.s3 import S3Store  # here, not at the top: a local run never needs it

                self._s3 = S3Store(self._s3_config, tuning=self._tuning)
            return self._s3

    def for_uri(self, uri: str) -> Store:
        kind = scheme(uri)
        if kind in ("", "file"):
            return self.local
        if kind == "s3":
            return self.s3
        raise UsageError(f"unsupported location {uri!r} (use a local path or s3://bucket/key)")

    def open_output(self, uri: str, *, expected_size: int | None = None, content_type: str | None = None) -> Output:
        return self.for_uri(uri).open_output(uri, expected_size=expected_size, content_type=content_type)

    def read_bytes(self, uri: str) -> bytes:
        return self.for_uri(uri).read_bytes(uri)

    def read_text(self, uri: str) -> str:
        return self.for_uri(uri).read_text(uri)

    def write_bytes(self, uri: str, data: bytes | bytearray, *, content_type: str | None = None) -> None:
        self.for_uri(uri).write_bytes(uri, data, content_type=content_type)

    def open_read(self, uri: str, start: int = 0, end: int | None = None, *,
                  version: str | None = None) -> IO[bytes]:
        return self.for_uri(uri).open_read(uri, start, end, version=version)

    def version(self, uri: str) -> str | None:
        return self.for_uri(uri).version(uri)

    def put_whole(self, uri: str, data: bytes, *, md5: str, content_type: str | None = None) -> None:
        self.for_uri(uri).put_whole(uri, data, md5=md5, content_type=content_type)

    def copy_object(self, source: str, target: str) -> str | None:
        if scheme(source) != scheme(target):
            return None
        return self.for_uri(target).copy_object(source, target)

    def etags(self, prefix: str) -> dict[str, str]:
        return self.for_uri(prefix).etags(prefix)

    def exists(self, uri: str) -> bool:
        return self.for_uri(uri).exists(uri)

    def size(self, uri: str) -> int:
        return self.for_uri(uri).size(uri)

    def list(self, prefix: str) -> Iterator[Entry]:
        return self.for_uri(prefix).list(prefix)

    def delete(self, uri: str) -> None:
        self.for_uri(uri).delete(uri)

    def delete_tree(self, uri: str) -> None:
        self.for_uri(uri).delete_tree(uri)

    def prune(self, uri: str) -> None:
        self.for_uri(uri).prune(uri)

    def reopen_output(self, uri: str, where: str, size: int) -> Output | None:
        return self.for_uri(uri).reopen_output(uri, where, size)

    def replace(self, source: str, target: str) -> None:
        if scheme(source) != scheme(target) and {scheme(source), scheme(target)} != {"", "file"}:
            raise UsageError(f"cannot move {source} to {target}: different storage")
        self.for_uri(target).replace(source, target)

    def image_source(self, root: str) -> ImageSource:
        return self.for_uri(root).image_source(root)

    def is_file(self, uri: str) -> bool:
        return self.for_uri(uri).is_file(uri)

    def open_seekable(self, uri: str) -> BinaryIO:
        return self.for_uri(uri).open_seekable(uri)

    def read_view(self, uri: str, start: int, end: int) -> memoryview:
        return self.for_uri(uri).read_view(uri, start, end)

    def clients(self, uri: str, *, images: bool = False) -> tuple[str, ...]:
        # Routed by scheme alone: the answer says whether an S3 client can be built at all.
        if scheme(uri) != "s3":
            return ()
        return ("boto3", "obstore") if images else ("boto3",)

    def local_path(self, uri: str) -> str | None:
        # Routed by scheme alone: asking must not build an S3 client.
        return self.local.local_path(uri) if scheme(uri) in ("", "file") else None

    def canonical(self, uri: str) -> str:
        return self.for_uri(uri).canonical(uri)

    def lock(self, uri: str, *, owner: str) -> Lock:
        return self.for_uri(uri).lock(uri, owner=owner)

    def temporaries(self, prefix: str) -> list[tuple[str, str]]:
        return self.for_uri(prefix).temporaries(prefix)

    def abort_uploads(self, prefix: str, owned: Callable[[str], bool], keep: Collection[str] = ()) -> list[str]:
        return self.for_uri(prefix).abort_uploads(prefix, owned, keep)

    def cleanup_stale_uploads(self, uri: str, *, min_age: float = 3600.0) -> Cleanup:
        return self.for_uri(uri).cleanup_stale_uploads(uri, min_age=min_age)

    def check_name(self, uri: str) -> None:
        self.for_uri(uri).check_name(uri)

    def probe(self, uri: str, *, write: bool, images: bool = False) -> None:
        self.for_uri(uri).probe(uri, write=write, images=images)

    def close(self) -> None:
        if self._s3 is not None:
            self._s3.close()
