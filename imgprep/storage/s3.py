"""``s3://`` locations: :class:`S3Store` (one client, shared), configured by an :class:`S3Config`.

botocore is imported only here and in the other ``s3_*`` modules, and only once an ``s3://``
URI is used.  Every S3 failure reaches the user as one :class:`~imgprep.errors.StorageError`
line naming the ``s3://`` URI; which error codes mean "not found" is decided in one place
(:func:`is_not_found`).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

from imgprep.errors import ChangedError, ImageError, StorageError, UsageError
from imgprep.storage.base import Entry, Output, Store
from imgprep.storage.budget import UploadBudget
from imgprep.storage.locks import Lock, OtherWriterError, dead_here, holder, lock_body
from imgprep.storage.probe import probe_image_root, probe_s3
from imgprep.storage.s3_base import (
    MiB,
    boto_errors,
    error_code,
    is_not_found,
    parse_s3_uri,
    storage_error,
)
from imgprep.storage.s3_cleanup import (
    Sweep,
    abort_owned,
    cleanup_stale_uploads,
    list_markers,
    marker_key,
    remove_orphan_markers,
)
from imgprep.storage.s3_config import S3Config
from imgprep.storage.s3_multipart import S3Output
from imgprep.storage.s3_source import S3ImageSource

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from imgprep.storage.base import Cleanup

_ENV_KEYS = frozenset({"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"})


@dataclass(frozen=True)
class S3Tuning:
    """Limits S3 itself sets, which only tests against loopback servers lower: not user options
    (a store is built with them, ``S3Store(config, tuning=...)``, never from a user's options)."""

    min_part_size: int = 5 * MiB  # S3's smallest part but the last (moto takes smaller ones)
    retry_max_backoff: float | None = None  # cap in seconds on botocore's retry delay


# ---------------------------------------------------------------------- the store


class _Body:
    """A GET's streaming body whose failures are one-line :class:`StorageError`\\ s."""

    def __init__(self, uri: str, body: Any, errors: tuple[type[Exception], ...]) -> None:
        self.uri, self._body, self._errors = uri, body, errors

    def read(self, n: int = -1) -> bytes:
        try:
            return self._body.read(None if n < 0 else n)
        except self._errors as exc:
            raise storage_error(self.uri, "download", exc) from None
        except OSError as exc:
            raise StorageError(f"download failed ({exc})", path=self.uri) from None

    def close(self) -> None:
        self._body.close()

    def __enter__(self) -> _Body:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _changed(uri: str, found: str | None, version: str | None) -> ChangedError:
    return ChangedError(f"changed since it was opened for reading (ETag {found}, was {version})", path=uri)


class S3Store(Store):
    """``s3://bucket/key`` locations through one botocore client (thread-safe, made on first use)."""

    def __init__(self, config: S3Config | None = None, *, tuning: S3Tuning | None = None) -> None:
        self.config = config or S3Config()
        self.tuning = tuning or S3Tuning()
        self._client: Any = None
        self._client_pid = 0
        self._session: Any = None
        self._object_stores: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._abort_until = 0.0
        # Finished outputs (rolled-over shards) still uploading: their parts count against one limit.
        self.background: list[Any] = []
        self.background_lock = threading.Lock()
        self.budget = UploadBudget(int(self.config.upload_memory))

    @classmethod
    def from_options(cls, **options: Any) -> S3Store:
        return cls(S3Config.from_options(options))

    @property
    def client(self) -> Any:
        """The botocore S3 client (one per process: a forked child makes its own)."""
        with self._lock:
            if self._client is None or self._client_pid != os.getpid():
                self._client = self._make_client()
                self._client_pid = os.getpid()
            return self._client

    def abort_wait(self) -> float:
        """Seconds an aborting output may still wait for S3: outputs aborted together (a failed
        or interrupted run drops all its shards) share one ``abort_timeout``."""
        now = time.monotonic()
        with self._lock:
            if now > self._abort_until + 1.0:
                self._abort_until = now + float(self.config.abort_timeout)
            return max(0.0, self._abort_until - now)

    @property
    def errors(self) -> tuple[type[Exception], ...]:
        return boto_errors()

    @property
    def session(self) -> Any:
        """The botocore session: one credential chain for the client and the image reader."""
        if self._session is None:
            try:
                # botocore's session directly: boto3's wrapper adds ~50 ms of imports and nothing used here.
                import botocore.session
            except ImportError:
                raise UsageError("s3:// locations need boto3 (pip install boto3)") from None
            self._session = botocore.session.get_session()
        return self._session

    def object_store(self, bucket: str) -> Any:
        """An obstore store for ``bucket`` (image reads), configured like the botocore client."""
        with self._lock:
            store = self._object_stores.get(bucket)
            if store is None:
                store = self._object_stores[bucket] = self._make_object_store(bucket)
            return store

    def _make_object_store(self, bucket: str) -> Any:
        from datetime import timedelta

        try:
            from obstore.store import S3Store as ObjectStore
        except ImportError:
            raise UsageError("s3:// image roots need obstore (pip install obstore)") from None
        cfg = self.config
        endpoint = cfg.endpoint
        region = cfg.region_name or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        provider = None
        if not (os.environ.keys() >= _ENV_KEYS and (region or endpoint)):
            # Not the environment's keys (boto3's first choice, which obstore reads the same way):
            # botocore's chain -- profiles, SSO, credential_process, container and instance roles.
            session = self.session
            if session.get_credentials() is None:
                raise StorageError("no AWS credentials found (environment, shared config, or an instance role)",
                                   path=f"s3://{bucket}")
            region = region or session.get_config_variable("region")
            from obstore.auth.boto3 import Boto3CredentialProvider

            provider = Boto3CredentialProvider(session)
        options: dict[str, Any] = {"region": region or "us-east-1"}
        if endpoint:
            options["endpoint"] = endpoint
        client = {
            "connect_timeout": timedelta(seconds=float(cfg.connect_timeout)),
            "read_timeout": timedelta(seconds=float(cfg.read_timeout)),
            "timeout": timedelta(seconds=max(120.0, float(cfg.read_timeout))),
            "allow_http": bool(endpoint and endpoint.startswith("http://")),
        }
        cap = self.tuning.retry_max_backoff
        backoff = 15.0 if cap is None else float(cap)
        retry = {
            "max_retries": int(cfg.max_attempts) - 1,
            "backoff": {"init_backoff": timedelta(milliseconds=min(100.0, backoff * 1000)),
                        "max_backoff": timedelta(seconds=backoff)},
            "retry_timeout": timedelta(seconds=int(cfg.max_attempts) * (float(cfg.read_timeout) + backoff)),
        }
        return ObjectStore(bucket, config=options, client_options=client, retry_config=retry,
                           credential_provider=provider)

    def _make_client(self) -> Any:
        try:
            from botocore.config import Config
        except ImportError:
            raise UsageError("s3:// locations need boto3 (pip install boto3)") from None
        cfg = self.config
        endpoint = cfg.endpoint
        config = Config(
            retries={"mode": "standard", "max_attempts": int(cfg.max_attempts)},
            max_pool_connections=max(int(cfg.max_pool_connections), int(cfg.fetch_workers)),
            connect_timeout=float(cfg.connect_timeout),
            read_timeout=float(cfg.read_timeout),
            # Checksums are asked for explicitly per request (see s3_multipart); reads verify when offered.
            request_checksum_calculation="when_required",
            s3={"addressing_style": "path"} if endpoint else None,
        )
        session = self.session
        client = session.create_client("s3", endpoint_url=endpoint, region_name=cfg.region_name, config=config)
        if self.tuning.retry_max_backoff is not None:
            _cap_backoff(client, int(cfg.max_attempts), float(self.tuning.retry_max_backoff))
        return client

    # ------------------------------------------------------------------ the Store interface

    def open_output(self, uri: str, *, expected_size: int | None = None, content_type: str | None = None) -> Output:
        return S3Output(uri, self, expected_size=expected_size, content_type=content_type)

    def reopen_output(self, uri: str, where: str, size: int) -> Output | None:
        """The multipart upload a checkpoint recorded (``where``: JSON of
        :meth:`S3Output.uploaded`), open after its parts; None, with one logged line saying
        why, when it is gone or its parts differ.  ``size`` is not used: S3 parts are not cut."""
        out, why = S3Output.resume(uri, self, json.loads(where))
        if out is None:
            log.warning("%s: cannot continue the checkpointed upload: %s; writing it again", uri, why)
        else:
            log.info("%s: continuing upload %s after the %d bytes of its %d parts", uri, out.upload_id,
                     out.bytes_written, len(json.loads(where)["parts"]))
        return out

    def read_bytes(self, uri: str) -> bytes:
        bucket, key = parse_s3_uri(uri)
        try:
            response = self.client.get_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
            return response["Body"].read()
        except self.errors as exc:
            if is_not_found(exc):
                raise StorageError("no such object", path=uri) from None
            raise storage_error(uri, "download", exc) from None

    def open_read(self, uri: str, start: int = 0, end: int | None = None, *,
                  version: str | None = None) -> IO[bytes]:
        bucket, key = parse_s3_uri(uri)
        extra = {}
        if start or end is not None:
            if end is not None and end <= start:
                return _Body(uri, _Empty(), self.errors)  # type: ignore[return-value]
            extra["Range"] = f"bytes={start}-{'' if end is None else end - 1}"
        if version is not None:
            extra["IfMatch"] = version
        try:
            response = self.client.get_object(Bucket=bucket, Key=key, **extra)
        except self.errors as exc:
            if is_not_found(exc):
                raise StorageError("no such object", path=uri) from None
            if error_code(exc) in ("PreconditionFailed", "412"):
                raise _changed(uri, "another", version) from None
            raise storage_error(uri, "download", exc) from None
        if version is not None and response.get("ETag") != version:  # a server that ignores If-Match
            response["Body"].close()
            raise _changed(uri, response.get("ETag"), version)
        return _Body(uri, response["Body"], self.errors)  # type: ignore[return-value]

    def version(self, uri: str) -> str:
        info = self.head(uri)
        if info is None:
            raise StorageError("no such object", path=uri)
        return str(info["ETag"])

    def head(self, uri: str) -> dict[str, Any] | None:
        """``HeadObject`` of ``uri``, or None when it does not exist."""
        bucket, key = parse_s3_uri(uri)
        if not key:
            return None  # a bucket root is no object (and botocore refuses an empty key)
        try:
            return self.client.head_object(Bucket=bucket, Key=key)
        except self.errors as exc:
            if is_not_found(exc):
                return None
            raise storage_error(uri, "HEAD", exc) from None

    def exists(self, uri: str) -> bool:
        return self.head(uri) is not None

    def size(self, uri: str) -> int:
        info = self.head(uri)
        if info is None:
            raise StorageError("no such object", path=uri)
        return int(info["ContentLength"])

    def list(self, prefix: str) -> Iterator[Entry]:
        bucket, key_prefix = parse_s3_uri(prefix)
        found: list[Entry] = []
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key_prefix):
                found.extend(Entry(f"s3://{bucket}/{o['Key']}", int(o["Size"])) for o in page.get("Contents", ()))
        except self.errors as exc:
            raise storage_error(prefix, "listing", exc) from None
        return iter(sorted(found))

    def delete(self, uri: str) -> None:
        bucket, key = parse_s3_uri(uri)
        try:
            self.client.delete_object(Bucket=bucket, Key=key)
        except self.errors as exc:
            if not is_not_found(exc):
                raise storage_error(uri, "delete", exc) from None

    def delete_tree(self, uri: str) -> None:
        bucket, _ = parse_s3_uri(uri)
        keys = [parse_s3_uri(e.uri)[1] for e in self.list(uri.rstrip("/") + "/")]
        for start in range(0, len(keys), 1000):
            batch = [{"Key": k} for k in keys[start : start + 1000]]
            try:
                self.client.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
            except self.errors as exc:
                raise storage_error(uri, "deleting", exc) from None

    def replace(self, source: str, target: str) -> None:
        """Server-side copy, then delete the source (S3 has no rename; objects up to 5 GiB)."""
        sb, sk = parse_s3_uri(source)
        tb, tk = parse_s3_uri(target)
        try:
            self.client.copy_object(Bucket=tb, Key=tk, CopySource={"Bucket": sb, "Key": sk})
        except self.errors as exc:
            raise storage_error(source, f"copy to {target}", exc) from None
        self.delete(source)

    def put_whole(self, uri: str, data: bytes, *, md5: str, content_type: str | None = None) -> None:
        """One PutObject carrying Content-MD5 (the server refuses bytes that do not match it):
        one request per object, where an :class:`S3Output` spends two (PutObject, then HEAD)."""
        from base64 import b64encode

        bucket, key = parse_s3_uri(uri)
        extra = {"ContentType": content_type} if content_type else {}
        try:
            self.client.put_object(Bucket=bucket, Key=key, Body=data,
                                   ContentMD5=b64encode(bytes.fromhex(md5)).decode(), **extra)
        except self.errors as exc:
            raise storage_error(uri, "upload", exc) from None

    def copy_object(self, source: str, target: str) -> str | None:
        """CopyObject: S3 copies the bytes (up to 5 GiB) without them leaving the server."""
        sb, sk = parse_s3_uri(source)
        tb, tk = parse_s3_uri(target)
        try:
            reply = self.client.copy_object(Bucket=tb, Key=tk, CopySource={"Bucket": sb, "Key": sk})
        except self.errors as exc:
            if is_not_found(exc):
                raise ImageError("no such image object", path=source) from None
            raise storage_error(source, f"copy to {target}", exc) from None
        return str(reply.get("CopyObjectResult", {}).get("ETag", "")).strip('"')

    def etags(self, prefix: str) -> dict[str, str]:
        bucket, key_prefix = parse_s3_uri(prefix)
        found: dict[str, str] = {}
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key_prefix):
                for o in page.get("Contents", ()):
                    found[f"s3://{bucket}/{o['Key']}"] = str(o.get("ETag", "")).strip('"')
        except self.errors as exc:
            raise storage_error(prefix, "listing", exc) from None
        return found

    def probe(self, uri: str, *, write: bool, images: bool = False) -> None:
        if images and not write:
            # Through obstore, which reads the images: a run reading s3:// images into a local
            # output then never makes a botocore client (its import and service model stay
            # resident through the whole pack, and cost a fixed CPU share per run).
            probe_image_root(self, uri)
        else:
            probe_s3(self, uri, write=write)

    def image_source(self, root: str) -> S3ImageSource:
        return S3ImageSource(root, self)

    # ------------------------------------------------------------------ multipart uploads (S3 only)

    def lock(self, uri: str, *, owner: str) -> Lock:
        """PutObject of ``uri`` with ``If-None-Match: *``, which S3 (since 2024), SeaweedFS and moto
        refuse with 412 when the object exists; a lock left by a killed run on this host (its pid
        is gone) is taken over by a PutObject conditional on its ETag (see :class:`_ObjectLock`),
        anything else is named and refused."""
        return _ObjectLock(self, uri, owner)

    def check_name(self, uri: str) -> None:
        """S3 keys hold at most 1,024 bytes; a multipart upload's marker key is longer than its key."""
        _, key = parse_s3_uri(uri)
        need = max(len(key.encode()), len(marker_key(key, "").encode()))
        if need > S3_KEY_MAX:
            raise UsageError(f"output name too long: its objects need keys of {need} bytes, an S3 key may have "
                             f"{S3_KEY_MAX}; choose a shorter output", path=uri)

    def abort_uploads(self, prefix: str, owned: Callable[[str], bool], keep: Collection[str] = ()) -> list[str]:
        bucket, key = parse_s3_uri(prefix)
        aborted = []
        try:
            markers = list_markers(self.client, bucket, key)  # before the uploads: see remove_orphan_markers
            keys = sorted({u["Key"] for u in self.list_uploads(prefix) if owned(f"s3://{bucket}/{u['Key']}")})
            for name in keys:
                done = abort_owned(self.client, bucket, name, Sweep(exact=True, started_before=time.time(), keep=keep))
                aborted += [f"s3://{bucket}/{k}" for k, _ in done]
            # Markers of uploads completed by a run killed before it could delete them.
            remove_orphan_markers(self.client, bucket, key, markers)
        except boto_errors() as exc:
            raise storage_error(prefix, "aborting stale uploads", exc) from None
        return aborted

    def list_uploads(self, prefix: str) -> list[dict[str, Any]]:
        """Incomplete multipart uploads under ``prefix``: ``Key``, ``UploadId``, ``Initiated`` each."""
        bucket, key_prefix = parse_s3_uri(prefix)
        out: list[dict[str, Any]] = []
        try:
            for page in self.client.get_paginator("list_multipart_uploads").paginate(Bucket=bucket, Prefix=key_prefix):
                out.extend(page.get("Uploads", ()))
        except self.errors as exc:
            raise storage_error(prefix, "listing uploads", exc) from None
        return out

    def list_parts(self, uri: str, upload_id: str) -> list[dict[str, Any]]:
        """The parts uploaded so far to ``upload_id`` of ``uri`` (``PartNumber``, ``ETag``, ``Size``...)."""
        bucket, key = parse_s3_uri(uri)
        out: list[dict[str, Any]] = []
        try:
            pages = self.client.get_paginator("list_parts").paginate(Bucket=bucket, Key=key, UploadId=upload_id)
            for page in pages:
                out.extend(page.get("Parts", ()))
        except self.errors as exc:
            raise storage_error(uri, "listing parts", exc) from None
        return out

    def cleanup_stale_uploads(self, uri: str, *, min_age: float = 3600.0) -> Cleanup:
        """Abort incomplete uploads imgprep left under ``uri`` (see :mod:`imgprep.storage.s3_cleanup`)."""
        return cleanup_stale_uploads(self, uri, min_age=min_age)


_CONFLICT = ("PreconditionFailed", "412", "ConditionalRequestConflict", "409")
_GONE = ("NoSuchKey", "404", "NotFound")
_LOCK_TRIES = 5
S3_KEY_MAX = 1024  # bytes of UTF-8


class _ObjectLock(Lock):
    """The S3 lock: taken with ``If-None-Match: *``, released with ``If-Match`` on its own ETag.

    A stale lock (its holder ran on this host and is gone) is taken over by a PutObject
    conditional on the stale lock's ETag (``If-Match``): of several runs taking it over at once
    exactly one write succeeds, the others get 412 and then see the winner's lock.  AWS S3
    honours ``If-None-Match: *`` on PutObject since August 2024, ``If-Match`` on PutObject since
    November 2024 and on DeleteObject since September 2025; SeaweedFS and moto honour all three
    (tests/test_publish_rerun.py).  A server that ignores ``If-Match`` would let every taker win,
    so it is probed first (a write that must fail) and the stale lock is then left to the user.
    """

    def __init__(self, store: S3Store, uri: str, owner: str) -> None:
        self.store, self.uri, self.owner = store, uri, owner
        self.bucket, self.key = parse_s3_uri(uri)
        # Every lock's bytes, and so its ETag, are unique: a takeover names one version.
        body = json.dumps({**json.loads(lock_body()), "run": uuid.uuid4().hex}).encode()
        self._etag = self._take(body)  # only once taken: release() must not touch another run's lock

    def _take(self, body: bytes) -> str:
        client = self.store.client
        for _ in range(_LOCK_TRIES):
            try:
                return str(client.put_object(Bucket=self.bucket, Key=self.key, Body=body, IfNoneMatch="*")["ETag"])
            except boto_errors() as exc:
                if error_code(exc) not in _CONFLICT:
                    error = storage_error(self.owner, "writing this output", exc)
                    raise StorageError(f"{error.message} (its lock object {self.uri.rsplit('/', 1)[-1]} could "
                                       "not be written)", path=self.owner) from None
            held = self._read()
            if held is None:
                continue  # released in between: try again
            raw, etag = held
            if not dead_here(raw):
                raise OtherWriterError(f"another run is writing this output ({holder(raw)}); wait for it, or "
                                       f"remove {self.uri} if that run is gone", path=self.owner)
            self._require_conditional_puts(raw)
            try:
                return str(client.put_object(Bucket=self.bucket, Key=self.key, Body=body, IfMatch=etag)["ETag"])
            except boto_errors() as exc:
                if error_code(exc) not in (*_CONFLICT, *_GONE):
                    raise storage_error(self.uri, "taking over the output's stale lock", exc) from None
            # Another run took it over (or released it) first: look again.
        raise OtherWriterError(f"the output's lock keeps changing hands; another run is starting on it (remove "
                               f"{self.uri} if none is)", path=self.owner)

    def _read(self) -> tuple[bytes, str] | None:
        """The lock's body and ETag, or None when it is gone."""
        try:
            reply = self.store.client.get_object(Bucket=self.bucket, Key=self.key)
            return reply["Body"].read(), str(reply["ETag"])
        except boto_errors() as exc:
            if is_not_found(exc):
                return None
            raise storage_error(self.uri, "reading the output's lock", exc) from None

    def _require_conditional_puts(self, raw: bytes) -> None:
        """Fail unless the server refuses a PutObject whose ``If-Match`` cannot hold."""
        client = self.store.client
        probe = f"{self.key}.probe-{uuid.uuid4().hex}"
        try:
            client.put_object(Bucket=self.bucket, Key=probe, Body=b"", IfMatch='"00000000000000000000000000000000"')
        except boto_errors() as exc:
            if error_code(exc) in (*_CONFLICT, *_GONE):
                return
        else:
            client.delete_object(Bucket=self.bucket, Key=probe)
        raise OtherWriterError(f"a stale lock is in the way ({holder(raw)}, gone) and this S3 server does not "
                               f"honour If-Match on PutObject, so it cannot be taken over safely: remove {self.uri} "
                               "and run again", path=self.owner)

    def release(self) -> None:
        """Delete the lock only while it is the version this run wrote (``If-Match``)."""
        etag, self._etag = self._etag, ""
        if not etag:
            return
        try:
            self.store.client.delete_object(Bucket=self.bucket, Key=self.key, IfMatch=etag)
        except boto_errors() as exc:
            if error_code(exc) not in (*_CONFLICT, *_GONE):
                raise storage_error(self.uri, "releasing the output's lock", exc) from None


class _Empty:
    def read(self, n: int | None = None) -> bytes:
        return b""

    def close(self) -> None:
        pass


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
