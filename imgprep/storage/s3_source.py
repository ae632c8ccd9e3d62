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
yields them in that order while downloads run ahead on ``fetch_workers`` threads: as many images
as make about ``prefetch_bytes`` at the size seen so far, at most ``prefetch`` and at least
:data:`READ_AHEAD_FLOOR`.  Small images then run far ahead -- a GET that takes ten times as long as
the others (the server collecting garbage, a slow disk) is absorbed by those fetched behind it,
instead of leaving the packer's workers without input -- while large photos are held a few at a
time: memory stays bounded by bytes whatever the images' sizes or the dataset's.
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

READ_AHEAD_FLOOR = 8  # images fetched ahead whatever their size: GETs in flight hide S3's latency


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
        self.prefetch_bytes = int(store.config.prefetch_bytes)
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

        Downloads pending or held ahead of the one yielded: :meth:`ahead` of them, never more than
        ``prefetch``; closing the generator early cancels those not started.
        """
        if self._pool is None:
            self._pool = DaemonExecutor(self.max_workers, "imgprep-s3get")
        pool, source, size = self._pool, iter(items), _Size()
        window: deque[Future[bytes | ImgprepError]] = deque()

        def top_up() -> None:
            want = self.ahead(size.mean)
            while len(window) < want:
                item = next(source, None)
                if item is None:
                    return
                window.append(pool.submit(self._fetch_or_error, item))

        try:
            top_up()
            while window:
                result = window.popleft().result()
                if isinstance(result, bytes):
                    size.note(len(result))
                top_up()
                yield result
        finally:
            for future in window:
                future.cancel()

    def ahead(self, mean: float | None) -> int:
        """Downloads to keep ahead when images are ``mean`` bytes (None: none fetched yet, one
        round of GETs)."""
        floor = min(self.prefetch, READ_AHEAD_FLOOR)
        if mean is None:
            return max(floor, min(self.prefetch, self.max_workers))
        return max(floor, min(self.prefetch, int(self.prefetch_bytes // max(mean, 1.0))))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)  # a GET stuck on a silent endpoint is left
            self._pool = None


class _Size:
    """The size of the images fetched lately: a moving mean that follows a list whose images grow
    (thumbnails first, then photos) within a few dozen images."""

    WEIGHT = 1 / 16

    def __init__(self) -> None:
        self.mean: float | None = None

    def note(self, size: int) -> None:
        self.mean = float(size) if self.mean is None else self.mean + (size - self.mean) * self.WEIGHT


def _first_line(exc: BaseException) -> str:
    """obstore's messages carry a Rust debug chain over several lines; the user gets the gist."""
    text = str(exc).strip()
    for line in text.splitlines():
        line = line.strip()
        if line:
            return line[:300]
    return type(exc).__name__
