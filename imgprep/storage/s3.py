"""``s3://`` locations: clients, URI parsing, small reads, and the entry points the rest of imgprep uses.

boto3 is imported only when an ``s3://`` URI is actually used.  Every S3 failure reaches the user
as one :class:`~imgprep.errors.StorageError` line naming the ``s3://`` URI.

Options understood by every function here (the ``storage_options`` the packer passes through):

- ``endpoint_url``: an S3-compatible endpoint (else ``AWS_ENDPOINT_URL``, else AWS);
- ``region_name``; ``max_attempts`` (botocore *standard* retry mode, default 5);
- ``retry_max_backoff``: cap in seconds on botocore's retry delay (tests shorten it);
- ``max_pool_connections``, ``connect_timeout``, ``read_timeout``.

Output-only options are described in :mod:`imgprep.storage.s3_multipart`.
"""

from __future__ import annotations

import os
import re
import threading
from typing import TYPE_CHECKING, Any

from imgprep.errors import StorageError, UsageError
from imgprep.formats.paths import quote

if TYPE_CHECKING:
    from imgprep.storage.base import Output
    from imgprep.storage.s3_source import S3ImageSource

__all__ = [
    "S3ImageSource",
    "boto_errors",
    "cleanup_stale_uploads",
    "client_for",
    "list_keys",
    "open_s3_output",
    "parse_s3_uri",
    "read_bytes",
    "read_text",
    "storage_error",
]

CLIENT_OPTIONS = (
    "endpoint_url",
    "region_name",
    "max_attempts",
    "retry_max_backoff",
    "max_pool_connections",
    "connect_timeout",
    "read_timeout",
)
_clients: dict[tuple[Any, ...], Any] = {}
_clients_lock = threading.Lock()


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


def client_for(**options: Any) -> Any:
    """A botocore S3 client for these options, shared per process (clients are thread-safe)."""
    try:
        # botocore's session directly: boto3's wrapper adds ~50 ms of imports and nothing used here.
        import botocore.session
        from botocore.config import Config
    except ImportError:
        raise UsageError("s3:// locations need boto3 (pip install boto3)") from None
    endpoint = options.get("endpoint_url") or os.environ.get("AWS_ENDPOINT_URL") or None
    attempts = int(options.get("max_attempts") or 5)
    backoff = options.get("retry_max_backoff")
    pool = int(options.get("max_pool_connections") or 16)
    key = (os.getpid(), endpoint, options.get("region_name"), attempts, backoff, pool,
           options.get("connect_timeout"), options.get("read_timeout"))
    with _clients_lock:
        client = _clients.get(key)
        if client is not None:
            return client
        config = Config(
            retries={"mode": "standard", "max_attempts": attempts},
            max_pool_connections=pool,
            connect_timeout=float(options.get("connect_timeout") or 10),
            read_timeout=float(options.get("read_timeout") or 120),
            # Checksums are asked for explicitly per request (see s3_multipart); reads verify when offered.
            request_checksum_calculation="when_required",
            s3={"addressing_style": "path"} if endpoint else None,
        )
        session = botocore.session.get_session()
        client = session.create_client(
            "s3", endpoint_url=endpoint, region_name=options.get("region_name"), config=config
        )
        if backoff is not None:
            _cap_backoff(client, attempts, float(backoff))
        _clients[key] = client
        return client


def _cap_backoff(client: Any, max_attempts: int, max_backoff: float) -> None:
    """Re-register botocore's standard retry handler with a smaller maximum delay.

    Standard mode waits up to 20 s between attempts after throttling (503 SlowDown); fault-injection
    tests and benchmarks on loopback do not need that.  Same retry rules, only the delay cap differs.
    """
    from botocore.retries import quota, standard

    events = client.meta.events
    service = client.meta.service_model.service_id.hyphenize()
    adapter = standard.RetryEventAdapter()
    detector = standard.ThrottlingErrorDetector(adapter)
    retry_quota = standard.RetryQuotaChecker(quota.RetryQuota(), detector)
    handler = standard.RetryHandler(
        retry_policy=standard.RetryPolicy(
            retry_checker=standard.StandardRetryConditions(max_attempts=max_attempts),
            retry_backoff=standard.ExponentialBackoff(max_backoff=max_backoff),
        ),
        retry_event_adapter=adapter,
        retry_quota=retry_quota,
    )
    unique_id = f"retry-config-{service}"
    events.unregister(f"needs-retry.{service}", unique_id=unique_id)
    events.register(f"needs-retry.{service}", handler.needs_retry, unique_id=unique_id)


def client_options(options: dict[str, Any]) -> dict[str, Any]:
    """The subset of ``options`` that shapes the client."""
    return {k: options[k] for k in CLIENT_OPTIONS if k in options}


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


def storage_error(uri: str, what: str, exc: BaseException) -> StorageError:
    """One-line :class:`StorageError` for a failed S3 call on ``uri``."""
    code = error_code(exc)
    if code:
        message = getattr(exc, "response", {}).get("Error", {}).get("Message") or ""
        detail = f"{code}: {message}" if message else code
    else:
        detail = " ".join(str(exc).split()) or type(exc).__name__
    return StorageError(f"{what} failed ({detail})", path=uri)


def open_s3_output(uri: str, **options: Any) -> Output:
    """Open ``s3://bucket/key`` for streaming writes (see :class:`~imgprep.storage.s3_multipart.S3Output`)."""
    from imgprep.storage.s3_multipart import S3Output

    return S3Output(uri, **options)


def read_bytes(uri: str, **options: Any) -> bytes:
    """Download a whole (small) object: a ``.lst``, a manifest, an ``.idx``."""
    bucket, key = parse_s3_uri(uri)
    client = client_for(**client_options(options))
    try:
        response = client.get_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
        return response["Body"].read()
    except boto_errors() as exc:
        if error_code(exc) in ("NoSuchKey", "404"):
            raise StorageError("no such object", path=uri) from None
        raise storage_error(uri, "download", exc) from None


def read_text(uri: str, **options: Any) -> str:
    """:func:`read_bytes` decoded as UTF-8."""
    data = read_bytes(uri, **options)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise StorageError(f"not UTF-8 text (byte {exc.start})", path=uri) from None


def head(uri: str, **options: Any) -> dict[str, Any] | None:
    """``HeadObject`` of ``uri``, or None when it does not exist."""
    bucket, key = parse_s3_uri(uri)
    try:
        return client_for(**client_options(options)).head_object(Bucket=bucket, Key=key)
    except boto_errors() as exc:
        if error_code(exc) in ("404", "NoSuchKey", "NotFound"):
            return None
        raise storage_error(uri, "HEAD", exc) from None


def list_keys(uri: str, **options: Any) -> list[tuple[str, int]]:
    """``(key, size)`` of every object whose key starts with the key part of ``uri``, in key order."""
    bucket, prefix = parse_s3_uri(uri)
    client = client_for(**client_options(options))
    out: list[tuple[str, int]] = []
    try:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            out.extend((item["Key"], int(item["Size"])) for item in page.get("Contents", ()))
    except boto_errors() as exc:
        raise storage_error(uri, "listing", exc) from None
    return sorted(out)


def cleanup_stale_uploads(uri: str, **options: Any) -> list[str]:
    """Abort the incomplete multipart uploads imgprep left under ``uri`` (see :mod:`s3_cleanup`)."""
    from imgprep.storage.s3_cleanup import cleanup_stale_uploads as cleanup

    return cleanup(uri, **options)


def __getattr__(name: str) -> Any:
    # S3ImageSource lives in its own module; import it lazily so `import imgprep.storage.s3` stays light.
    if name == "S3ImageSource":
        from imgprep.storage.s3_source import S3ImageSource

        return S3ImageSource
    raise AttributeError(name)
