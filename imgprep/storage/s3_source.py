"""Images read straight from ``s3://bucket/prefix`` for the packer, downloaded ahead on a thread pool.

The packer consumes images in list order in its parent process.  :meth:`S3ImageSource.iter_fetch`
yields them in that order while up to ``prefetch`` downloads run ahead on ``max_workers`` threads,
so at most ``prefetch`` images are held in memory whatever the dataset's size, and a pack runs
S3 → S3 without staging anything on disk.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING

from imgprep.errors import ImageError, ImgprepError
from imgprep.formats.lst import LstItem
from imgprep.storage.images import ImageSource
from imgprep.storage.s3 import is_not_found, parse_s3_uri, storage_error

if TYPE_CHECKING:
    from imgprep.storage.s3 import S3Store


class S3ImageSource(ImageSource):
    """Images under ``s3://bucket/prefix``, addressed by the list's relative paths.

    A list path that is itself an ``s3://`` URI (a manifest's ``source-ref``) is used as is.
    A missing object is an :class:`ImageError` (the packer skips it unless ``--strict``); any other
    failure after retries is a :class:`StorageError`.  Both name the object's URI.
    """

    def __init__(self, root: str, store: S3Store) -> None:
        self.root = root.rstrip("/")
        self.bucket, _ = parse_s3_uri(self.root)
        self.prefetch = int(store.config.prefetch)
        self.max_workers = int(store.config.fetch_workers)
        self._store = store
        self._client = store.client
        self._pool: ThreadPoolExecutor | None = None

    def uri(self, item: LstItem) -> str:
        return item.path if item.path.startswith("s3://") else f"{self.root}/{item.path.lstrip('/')}"

    def local_path(self, item: LstItem) -> str | None:
        return None

    def describe(self, item: LstItem) -> str:
        return self.uri(item)

    def fetch(self, item: LstItem) -> bytes:
        """Download one image now (no read-ahead)."""
        uri = self.uri(item)
        bucket, key = parse_s3_uri(uri)
        try:
            return self._client.get_object(Bucket=bucket, Key=key)["Body"].read()
        except self._store.errors as exc:
            if is_not_found(exc):
                raise ImageError("no such image object", path=uri) from None
            raise storage_error(uri, "image download", exc) from None

    def _fetch_or_error(self, item: LstItem) -> bytes | ImgprepError:
        try:
            return self.fetch(item)
        except ImgprepError as exc:
            return exc

    def iter_fetch(self, items: Iterable[LstItem]) -> Iterator[bytes | ImgprepError]:  # type: ignore[override]
        """Yield each item's bytes (or its error, as the packer's ``_safe_fetch`` does) in order.

        At most ``prefetch`` downloads are pending or held at any time; closing the generator
        early cancels those not started.
        """
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.max_workers, thread_name_prefix="imgprep-s3get")
        pool = self._pool
        source = iter(items)
        window: deque[Future[bytes | ImgprepError]] = deque()
        try:
            for item in source:
                window.append(pool.submit(self._fetch_or_error, item))
                if len(window) >= self.prefetch:
                    break
            while window:
                result = window.popleft().result()
                for item in source:
                    window.append(pool.submit(self._fetch_or_error, item))
                    break
                yield result
        finally:
            for future in window:
                future.cancel()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
