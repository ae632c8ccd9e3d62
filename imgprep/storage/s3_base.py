"""What every S3 module shares: the ``s3://`` URI, sizes, and botocore's errors in one place.

:mod:`imgprep.storage.s3` (the store), :mod:`~imgprep.storage.s3_multipart` (uploads),
:mod:`~imgprep.storage.s3_cleanup` and :mod:`~imgprep.storage.s3_source` all import from here and
not from each other's helpers, so the S3 modules form no import circle.
"""

from __future__ import annotations

import re
import threading
from typing import TYPE_CHECKING, Any, Protocol

from imgprep.errors import StorageError, UsageError
from imgprep.formats.paths import quote

if TYPE_CHECKING:
    from imgprep.storage.budget import UploadBudget
    from imgprep.storage.s3_config import S3Config, S3Tuning

MiB = 1024 * 1024


# What the S3 helpers need of the store, so they type against these and not against the store
# (:class:`~imgprep.storage.s3.S3Store` satisfies all three): the arrows point one way.
class S3Access(Protocol):
    """The client and botocore's error classes (cleanup, the probe)."""

    @property
    def client(self) -> Any: ...
    @property
    def errors(self) -> tuple[type[Exception], ...]: ...


class S3Uploads(S3Access, Protocol):
    """What a multipart upload shares with the other uploads of its store."""

    config: S3Config
    tuning: S3Tuning
    budget: UploadBudget
    background: list[Any]
    background_lock: threading.Lock

    def abort_wait(self) -> float: ...


class S3Reads(Protocol):
    """What the image source reads through."""

    config: S3Config

    def object_store(self, bucket: str) -> Any: ...
_NOT_FOUND = frozenset({"404", "NoSuchKey", "NotFound"})
_BUCKET = re.compile(r"[a-zA-Z0-9.\-_]{1,255}")


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """Split ``s3://bucket/key`` into ``(bucket, key)``; the key may be empty (a bucket root)."""
    if not uri.lower().startswith("s3://"):
        raise UsageError(f"{uri!r} is not an s3:// URI")
    bucket, _, key = uri[5:].partition("/")
    if not bucket:
        raise UsageError(f"{uri}: no bucket name in the S3 URI")
    if not _BUCKET.fullmatch(bucket):
        # botocore's own rule, checked here so the message names the URI and is not cut short
        raise UsageError(f"{quote(uri)}: {quote(bucket)} is not a bucket name (letters, digits, '.', '-', '_')")
    return bucket, key


# ---------------------------------------------------------------------- errors, in one place


def boto_errors() -> tuple[type[Exception], ...]:
    """botocore's exception bases (imported only once S3 is in use): what an S3 call may raise."""
    from botocore.exceptions import BotoCoreError, ClientError

    return (BotoCoreError, ClientError)


def error_code(exc: BaseException) -> str:
    """The S3 error code of a botocore ``ClientError`` (``""`` for other exceptions)."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


def is_not_found(exc: BaseException) -> bool:
    """HEAD answers a bare 404, GET ``NoSuchKey``, some servers ``NotFound``: all mean "no such object"."""
    return error_code(exc) in _NOT_FOUND


def is_no_such_upload(exc: BaseException) -> bool:
    return error_code(exc) == "NoSuchUpload"


# Errors a retry of the same request cannot fix.
_FATAL_CODES = frozenset(
    {"NoSuchUpload", "NoSuchBucket", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch",
     "EntityTooSmall", "EntityTooLarge", "InvalidPart", "InvalidPartOrder", "InvalidBucketName"}
)


def is_silence(exc: BaseException) -> bool:
    """No answer at all (timeouts, refused connections): botocore has already retried it
    ``max_attempts`` times, so retrying again would only multiply the time a dead endpoint costs."""
    from botocore.exceptions import ConnectTimeoutError, EndpointConnectionError, ReadTimeoutError

    return isinstance(exc, ConnectTimeoutError | EndpointConnectionError | ReadTimeoutError)


def worth_retrying(exc: BaseException) -> bool:
    """Whether imgprep's own retry of a part (on top of botocore's) may succeed."""
    return error_code(exc) not in _FATAL_CODES and not is_silence(exc)


def storage_error(uri: str, what: str, exc: BaseException) -> StorageError:
    """One-line :class:`StorageError` for a failed S3 call on ``uri``."""
    code = error_code(exc)
    if code:
        message = getattr(exc, "response", {}).get("Error", {}).get("Message") or ""
        detail = f"{code}: {message}" if message else code
    else:
        detail = " ".join(str(exc).split()) or type(exc).__name__
    return StorageError(f"{what} failed ({detail})", path=uri)
