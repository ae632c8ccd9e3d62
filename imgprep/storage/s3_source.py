"""Images read straight from ``s3://bucket/prefix`` for the packer, through obstore, fetched ahead.

Why obstore (Rust ``object_store``) and not botocore here: an image is one small GET, and
botocore spends about 3 ms of client CPU per request (more than the native core spends decoding,
resizing and encoding the image); obstore spends about 0.3 ms, so a pack from S3 runs near the
speed of a pack from disk.  Uploads stay on botocore (UploadPartCopy, ListMultipartUploads and
the ownership markers are botocore calls there), where per-request cost is spread over MiB parts.

Credentials come from the same botocore session the store's client uses (environment, shared
config and profiles, instance and task roles), the endpoint from ``endpoint_url`` or
``AWS_ENDPOINT_URL``, and timeouts and retries from the same :class:`~imgprep.storage.s3_config.S3Config`.

The packer consumes images in list order in its parent process.  :meth:`S3ImageSource.iter_fetch`
yields them in that order while up to ``prefetch`` downloads run ahead on ``fetch_workers``
threads, so at most ``prefetch`` images are held in memory whatever the dataset's size.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future

from imgprep.errors import ImageError, ImgprepError, StorageError
from imgprep.formats.lst import LstItem
from imgprep.storage.images import ImageSource
from imgprep.storage.s3_base import S3Reads, parse_s3_uri
from imgprep.storage.threads import DaemonExecutor


class S3ImageSource(ImageSource):
    """Images under ``s3://bucket/prefix``, addressed by the list's relative paths.

    A list path that is itself an ``s3://`` URI (a manifest's ``source-ref``) is used as is.
    A missing object is an :class:`ImageError` (the packer skips it unless ``--strict``); any other
    failure after retries is a :class:`StorageError` (the run fails).  Both name the object's URI.
    """

    def __init__(self, root: str, store: S3Reads) -> None:
        self.root = root.rstrip("/")
        self.bucket, _ = parse_s3_uri(self.root)
        self.prefetch = int(store.config.prefetch)
        self.max_workers = int(store.config.fetch_workers)
        self._store = store
        self._pool: DaemonExecutor | None = None

    def uri(self, item: LstItem) -> str:
        return item.path if item.path.startswith("s3://") else f"{self.root}/{item.path.lstrip('/')}"

    def local_path(self, item: LstItem) -> str | None:
        return None

    def describe(self, item: LstItem) -> str:
        return self.uri(item)

    def fetch(self, item: LstItem) -> bytes:
        """Download one image now (no read-ahead)."""
        import obstore
        from obstore.exceptions import BaseError, NotFoundError

        uri = self.uri(item)
        bucket, key = parse_s3_uri(uri)
        try:
            return obstore.get(self._store.object_store(bucket), key).bytes().to_bytes()
        except (FileNotFoundError, NotFoundError):
            raise ImageError("no such image object", path=uri) from None
        except ValueError as exc:
            raise ImageError(f"not a usable object key ({_first_line(exc)})", path=uri) from None
        except (BaseError, OSError) as exc:
            raise StorageError(f"image download failed ({_first_line(exc)})", path=uri) from None

    def _fetch_or_error(self, item: LstItem) -> bytes | ImgprepError:
        try:
            return self.fetch(item)
        except ImgprepError as exc:
            return exc

    def iter_fetch(self, items: Iterable[LstItem]) -> Iterator[bytes | ImgprepError]:  # type: ignore[override]
        """Yield each item's bytes (or its error) in order.

        At most ``prefetch`` downloads are pending or held at any time; closing the generator
        early cancels those not started.
        """
        if self._pool is None:
            self._pool = DaemonExecutor(self.max_workers, "imgprep-s3get")
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
            self._pool.shutdown(wait=False, cancel_futures=True)  # a GET stuck on a silent endpoint is left
            self._pool = None


def _first_line(exc: BaseException) -> str:
    """obstore's messages carry a Rust debug chain over several lines; the user gets the gist."""
    text = str(exc).strip()
    for line in text.splitlines():
        line = line.strip()
        if line:
            return line[:300]
    return type(exc).__name__
