"""Streaming writes to S3: a push-style :class:`~imgprep.storage.base.Output` over multipart upload.

Why not ``s3transfer.upload_fileobj``: it pulls from a file object, while the packer pushes records,
so it needs a pipe and a thread between them; it retries a part only through botocore; it cannot
mark an upload where ``ListMultipartUploads`` shows it (for cleanup after SIGKILL); and a Complete
that answers NoSuchUpload after a lost reply ends in an abort.  This module keeps s3transfer's
design (memory bounded at submission by a semaphore, abort registered as soon as the upload
exists, part sizes adjusted to S3's limits) and does those four things too.

Memory: every part buffer — the one being filled and those uploading, of every output the store
has open, rolled-over shards included — is reserved from the store's one
:class:`~imgprep.storage.budget.UploadBudget` (``upload_memory``, default 40 MiB) before it is
allocated and released when the part is uploaded; ``write`` blocks while the budget is spent
(backpressure on the packer).  ``max_concurrency`` (default 4) caps each output's parts in flight.
An output that holds nothing may always take one part, so the bound is ``upload_memory`` plus one
part per further output opened while it is spent, and at least one part.

Part sizes: ``part_size`` (default 8 MiB, at least ``min_part_size`` = 5 MiB), raised up front so
that ``expected_size`` fits in 10,000 parts, and doubled after every 1,000 parts, so an object of
any size S3 accepts (5 TiB) fits in 10,000 parts even without a hint.  With the defaults an
unsharded object holds parts of at most 32 MiB (so it stays within the budget) up to 56,000 MiB;
beyond, its parts are 64 MiB and up, one at a time.  A buffer for an object of known
``expected_size`` is no larger than the object.

Integrity: every PutObject/UploadPart carries a checksum (``checksum="CRC32"`` by default, computed
by botocore and verified by the server; ``"MD5"`` sends Content-MD5; ``"CRC32C"``/``"SHA256"``
also work, CRC32C needs ``botocore[crt]``), and the finished object's size is checked with HEAD.

Ownership marks: an upload is created with metadata ``x-amz-meta-imgprep-run`` and, because
listings do not show metadata, a small marker object ``<dir>/.imgprep-uploads/<name>.<id>`` is
written next to it and deleted on commit or abort.  :mod:`imgprep.storage.s3_cleanup` aborts only
uploads that have such a marker, so it never touches anyone else's uploads.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import threading
import time
import uuid
from base64 import b64encode
from concurrent.futures import Future, wait
from typing import Any

from imgprep.errors import ImgprepError, StorageError, UsageError
from imgprep.storage.base import Output, Store, is_remote
from imgprep.storage.s3_base import (
    MiB,
    S3Uploads,
    boto_errors,
    is_no_such_upload,
    is_not_found,
    is_silence,
    parse_s3_uri,
    storage_error,
    worth_retrying,
)
from imgprep.storage.s3_cleanup import HOST, RUN_KEY, Sweep, abort_owned, marker_key
from imgprep.storage.threads import DaemonExecutor

log = logging.getLogger(__name__)

DEFAULT_PART_SIZE = 8 * MiB
MIN_PART_SIZE = 5 * MiB
MAX_PART_SIZE = 5 * 1024 * MiB
MAX_PARTS = 10_000
GROW_EVERY = 1_000
BOTO_ERRORS = boto_errors()


class _Cancelled(Exception):
    """Raised inside worker threads once the output is being aborted."""


def plan_part_size(part_size: int, min_part_size: int, expected_size: int | None) -> int:
    """First part size: at least the minimum, large enough that ``expected_size`` needs ≤ 10,000 parts."""
    size = max(int(part_size), int(min_part_size))
    if expected_size:
        size = max(size, math.ceil(expected_size / MAX_PARTS))
    return min(size, MAX_PART_SIZE)


def part_size_for(first: int, number: int) -> int:
    """Size of part ``number`` (1-based): ``first`` doubled after every 1,000 parts."""
    return min(first << ((number - 1) // GROW_EVERY), MAX_PART_SIZE)


class S3Output(Output):
    """Stream bytes to ``s3://bucket/key``; visible only after :meth:`commit`, nothing left by :meth:`abort`.

    Small objects (under one part) go up with a single PutObject on commit; larger ones as a
    multipart upload whose full parts upload on a pool of ``max_concurrency`` threads while the
    caller keeps writing.  A part is retried ``part_retries`` times beyond botocore's own retries.
    """

    def __init__(
        self, uri: str, store: S3Uploads, *, expected_size: int | None = None, content_type: str | None = None
    ) -> None:
        self.uri = uri
        self.bucket, self.key = parse_s3_uri(uri)
        if not self.key or self.key.endswith("/"):
            raise UsageError(f"{uri}: an output needs an object key, not a bucket or folder")
        config = store.config
        self._store = store
        self._budget = store.budget
        self._expected = expected_size
        self._client = store.client
        self._checksum = config.checksum
        self._min_part = int(store.tuning.min_part_size)
        self._first_part = plan_part_size(config.part_size, self._min_part, expected_size)
        self._part_limit = self._first_part
        self._max_concurrency = int(config.max_concurrency)
        self._part_retries = int(config.part_retries)
        self._extra: dict[str, Any] = {"ContentType": content_type} if content_type else {}
        self.run = f"{HOST}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
        self.started = time.time()
        self.bytes_written = 0
        self.copied_bytes = 0  # appended server-side by copy_from
        self.upload_id: str | None = None
        self._buf: bytearray | None = None  # the part being filled, allocated once at full size
        self._fill = 0
        self._parts: list[Future[dict[str, Any]]] = []
        self._part_sizes: list[int] = []  # bytes of each part, for checkpoints (see uploaded())
        self._pool: DaemonExecutor | None = None
        self._slots = threading.BoundedSemaphore(self._max_concurrency)
        self._cancel = threading.Event()
        self._error: BaseException | None = None
        self._error_lock = threading.Lock()
        self._may_exist = False  # a PutObject/Complete was sent: the final object may be ours
        self._state = "open"

    # ------------------------------------------------------------------ writing

    def write(self, data: bytes | bytearray | memoryview) -> int:
        if self._state != "open":  # also after finish(): a finished output takes no more data
            raise StorageError(f"write after the output was {self._state}", path=self.uri)
        self._raise_part_error()
        view = memoryview(data).cast("B")
        n, pos = len(view), 0
        while pos < n:
            if self._buf is None:
                self._new_buffer(self.bytes_written + pos)
            elif self._fill == len(self._buf):
                self._grow_buffer()
            take = min(len(self._buf) - self._fill, n - pos)  # type: ignore[arg-type]  # set above
            self._buf[self._fill : self._fill + take] = view[pos : pos + take]
            self._fill += take
            pos += take
            if self._fill >= self._part_limit:
                self._submit_part()
        self.bytes_written += n
        return n

    def append_object(self, store: Store, uri: str, size: int) -> None:
        """Append ``uri``: copied server-side when it is an S3 object, else streamed through."""
        if is_remote(uri):
            self.copy_from(uri, size)
        else:
            super().append_object(store, uri, size)

    def copy_from(self, source_uri: str, size: int) -> None:
        """Append the whole object ``source_uri`` (``size`` bytes), server-side where S3 allows it.

        A copied part (UploadPartCopy) must start on a part boundary and, unless last, be at
        least ``min_part_size``: bytes already buffered are topped up with a ranged download of
        the source's head, and a source (or tail) too small to be a part is downloaded into the
        buffer, where it coalesces with what follows.  Only those small pieces pass through here.
        """
        if self._state != "open":
            raise StorageError(f"write after the output was {self._state}", path=self.uri)
        self._raise_part_error()
        bucket, key = parse_s3_uri(source_uri)
        pos = 0
        if self._fill:
            # Top the buffer up to the part minimum only, send it, and copy the rest.
            need = max(self._min_part - self._fill, 0)
            if size - need < self._min_part:
                self._stream_range(bucket, key, 0, size)
                return
            self._stream_range(bucket, key, 0, need)
            if self._fill:
                self._submit_part()
            pos = need
        while size - pos >= self._min_part:
            remaining = size - pos
            n = remaining if remaining <= MAX_PART_SIZE else min(MAX_PART_SIZE, remaining - self._min_part)
            self._submit(self._copy_part, bucket, key, pos, pos + n - 1, size=n)
            self.bytes_written += n
            self.copied_bytes += n
            pos += n
        if pos < size:
            self._stream_range(bucket, key, pos, size)

    def _stream_range(self, bucket: str, key: str, start: int, end: int) -> None:
        """Download bytes ``[start, end)`` of an object into this output, 1 MiB at a time."""
        if end <= start:
            return
        try:
            body = self._client.get_object(Bucket=bucket, Key=key, Range=f"bytes={start}-{end - 1}")["Body"]
            got = 0
            for chunk in body.iter_chunks(MiB):
                got += self.write(chunk)
        except BOTO_ERRORS as exc:
            raise storage_error(f"s3://{bucket}/{key}", "download", exc) from None
        if got != end - start:
            raise StorageError(f"short read: {got} of {end - start} bytes", path=f"s3://{bucket}/{key}")

    def _copy_part(self, number: int, bucket: str, key: str, first: int, last: int) -> dict[str, Any]:
        def call() -> dict[str, Any]:
            reply = self._client.upload_part_copy(
                Bucket=self.bucket, Key=self.key, UploadId=self.upload_id, PartNumber=number,
                CopySource={"Bucket": bucket, "Key": key}, CopySourceRange=f"bytes={first}-{last}",
            )["CopyPartResult"]
            return self._part_entry(number, reply)

        return self._guarded(call, f"copying part {number} from s3://{bucket}/{key}")

    def _new_buffer(self, written: int) -> None:
        """Reserve and allocate the next part's buffer: a whole part, or what ``expected_size`` leaves."""
        size = self._part_limit
        if self._expected is not None:
            size = max(1, min(size, self._expected - written))
        self._budget.acquire(self, size)
        self._buf = bytearray(size)

    def _grow_buffer(self) -> None:
        """More data than ``expected_size`` said: widen the short buffer to a whole part."""
        if self._buf is None:  # only called while a part is being filled
            raise RuntimeError("imgprep bug: no part buffer to grow")
        extra = self._part_limit - len(self._buf)
        self._budget.acquire(self, extra)
        self._buf.extend(bytes(extra))

    def _submit_part(self) -> None:
        data, reserved = self._take_buffer()
        self._submit(self._upload_part, data, size=len(data), reserved=reserved)

    def _take_buffer(self) -> tuple[bytearray, int]:
        """Hand over the filled buffer (truncated in place to what was written) and the bytes it
        reserved; the next write starts a new one."""
        data = self._buf if self._buf is not None else bytearray()
        reserved = len(data)
        del data[self._fill :]
        self._buf, self._fill = None, 0
        return data, reserved

    def _submit(self, task: Any, *args: Any, size: int, reserved: int = 0) -> None:
        """Start part ``len(parts) + 1`` (``size`` bytes) as ``task(number, *args)`` once a slot
        is free; the ``reserved`` budget bytes are released when the part is done."""
        try:
            if self.upload_id is None:
                self._create_upload()
            number = len(self._parts) + 1
            if number > MAX_PARTS:
                raise StorageError(f"more than {MAX_PARTS} parts (part size {self._part_limit})", path=self.uri)
            self._slots.acquire()  # backpressure: at most max_concurrency parts in flight
        except BaseException:
            self._budget.release(self, reserved)
            raise
        try:
            self._raise_part_error()
            future = self._executor().submit(task, number, *args)
        except BaseException:
            self._slots.release()
            self._budget.release(self, reserved)
            raise

        def done(_: Future[dict[str, Any]]) -> None:
            self._slots.release()
            self._budget.release(self, reserved)

        future.add_done_callback(done)
        self._parts.append(future)
        self._part_sizes.append(size)
        self._part_limit = part_size_for(self._first_part, number + 1)

    def _executor(self) -> DaemonExecutor:
        if self._pool is None:
            self._pool = DaemonExecutor(self._max_concurrency, "imgprep-s3")
        return self._pool

    def _create_upload(self) -> None:
        # Run in a worker so that Ctrl-C in the caller cannot lose an upload id: abort() waits for it.
        self._executor().submit(self._create_upload_call).result()

    def _create_upload_call(self) -> None:
        kwargs = dict(self._extra)
        if self._checksum not in ("MD5", "NONE"):
            kwargs["ChecksumAlgorithm"] = self._checksum
        try:
            reply = self._client.create_multipart_upload(
                Bucket=self.bucket, Key=self.key, Metadata={RUN_KEY: self.run}, **kwargs
            )
        except BOTO_ERRORS as exc:
            raise storage_error(self.uri, "starting the multipart upload", exc) from None
        self.upload_id = reply["UploadId"]
        self._mark_ours()

    def _checksum_args(self, data: bytes | bytearray) -> dict[str, str]:
        if self._checksum == "MD5":
            return {"ContentMD5": b64encode(hashlib.md5(data).digest()).decode("ascii")}
        if self._checksum == "NONE":
            return {}
        return {"ChecksumAlgorithm": self._checksum}

    def _upload_part(self, number: int, data: bytearray) -> dict[str, Any]:
        def call() -> dict[str, Any]:
            reply = self._client.upload_part(
                Bucket=self.bucket, Key=self.key, UploadId=self.upload_id, PartNumber=number, Body=data,
                **self._checksum_args(data),
            )
            return self._part_entry(number, reply)

        return self._guarded(call, f"uploading part {number}")

    def _part_entry(self, number: int, reply: dict[str, Any]) -> dict[str, Any]:
        """The CompleteMultipartUpload entry for a part: its ETag, and its checksum when returned."""
        part = {"PartNumber": number, "ETag": reply["ETag"]}
        field = f"Checksum{self._checksum}"
        if reply.get(field):
            part[field] = reply[field]
        return part

    def _guarded(self, call: Any, what: str) -> Any:
        """Run a part task with retries; its failure fails the whole output."""
        try:
            return self._retrying(call, what)
        except BaseException as exc:
            with self._error_lock:
                if self._error is None:
                    self._error = exc
            raise

    def _retrying(self, call: Any, what: str) -> Any:
        """Run ``call`` with our own retries on top of botocore's (a part is worth another try)."""
        for attempt in range(self._part_retries + 1):
            if self._cancel.is_set():
                raise _Cancelled
            try:
                return call()
            except BOTO_ERRORS as exc:
                if not worth_retrying(exc) or attempt == self._part_retries:
                    raise storage_error(self.uri, what, exc) from None
                log.debug("%s: %s failed (%s), retrying", self.uri, what, exc)
                if self._cancel.wait(min(0.25 * 2**attempt, 5.0)):
                    raise _Cancelled from None
        raise _Cancelled  # unreachable: the loop returns or raises

    def _raise_part_error(self) -> None:
        if self._error is not None:
            error = self._error
            self.abort()
            if isinstance(error, ImgprepError):
                raise error
            raise StorageError(f"upload failed ({error})", path=self.uri)

    # ------------------------------------------------------------------ resuming after a kill

    def uploaded(self) -> tuple[int, dict[str, Any] | None]:
        """The prefix of the object that S3 already holds, and what :meth:`resume` needs to go on
        from it: ``(bytes, {"upload_id", "run", "parts"})`` over the parts done so far without a
        gap from part 1 (a part still in flight ends the run), or ``(0, None)`` before that."""
        if self.upload_id is None or self._state != "open":
            return 0, None
        parts, size = [], 0
        for future, part_size in zip(self._parts, self._part_sizes, strict=False):
            if not future.done() or future.cancelled() or future.exception() is not None:
                break
            parts.append({**future.result(), "Size": part_size})
            size += part_size
        if not parts:
            return 0, None
        return size, {"upload_id": self.upload_id, "run": self.run, "parts": parts}

    @classmethod
    def resume(cls, uri: str, store: S3Uploads, upload: dict[str, Any]) -> tuple[S3Output | None, str]:
        """The upload a checkpoint recorded (:meth:`uploaded`), open again after its parts, or
        ``(None, why)`` when S3 no longer has it or its parts differ (then it is aborted)."""
        out = cls(uri, store)
        upload_id, recorded = str(upload["upload_id"]), list(upload["parts"])
        try:
            pages = out._client.get_paginator("list_parts").paginate(Bucket=out.bucket, Key=out.key, UploadId=upload_id)
            listed = {p["PartNumber"]: p for page in pages for p in page.get("Parts", ())}
        except BOTO_ERRORS as exc:
            if is_no_such_upload(exc) or is_not_found(exc):
                out.upload_id = upload_id
                out._forget_marker()
                return None, f"its upload {upload_id} is no longer open (completed, aborted or expired)"
            raise storage_error(uri, "listing the parts of the checkpointed upload", exc) from None
        for number, part in enumerate(recorded, 1):
            found = listed.get(number)
            if found is None or found["ETag"] != part["ETag"] or int(found["Size"]) != int(part["Size"]):
                out.upload_id = upload_id
                out.abort()
                return None, f"part {number} of its upload {upload_id} differs from the checkpoint"
        out.upload_id, out.run = upload_id, str(upload["run"])
        for part in recorded:
            done: Future[dict[str, Any]] = Future()
            done.set_result({k: v for k, v in part.items() if k != "Size"})
            out._parts.append(done)
            out._part_sizes.append(int(part["Size"]))
        out.bytes_written = sum(out._part_sizes)
        out._part_limit = part_size_for(out._first_part, len(recorded) + 1)
        out._mark_ours()
        return out, ""

    def _mark_ours(self) -> None:
        """Write the marker saying this process owns the upload (again when a resumed run takes
        it over, so that cleanup sees a live writer)."""
        if self.upload_id is None:  # only called once the upload exists
            raise RuntimeError("imgprep bug: no upload to mark")
        try:
            self._client.put_object(
                Bucket=self.bucket,
                Key=marker_key(self.key, self.upload_id),
                Body=json.dumps({"key": self.key, "upload_id": self.upload_id, "run": self.run}).encode(),
                Metadata={RUN_KEY: self.run, "imgprep-host": HOST, "imgprep-pid": str(os.getpid())},
            )
        except BOTO_ERRORS as exc:
            raise storage_error(self.uri, "writing the upload marker", exc) from None

    # ------------------------------------------------------------------ finishing

    def finish(self) -> None:
        """Start uploading everything written so far as parts (not yet visible); do not wait.

        A finished output keeps uploading in the background while its writer fills the next
        one; even a small one becomes a one-part upload instead of waiting in memory for a
        PutObject.  Memory stays bounded: once finished outputs have more than
        ``max_concurrency`` parts still in flight, this waits for the oldest.  :meth:`commit`
        waits for the rest and reports any failure.
        """
        if self._state != "open":
            return
        self._raise_part_error()
        try:
            if self._fill:
                self._submit_part()
        except BaseException as exc:
            self.abort()
            if isinstance(exc, BOTO_ERRORS):
                raise storage_error(self.uri, "upload", exc) from None
            raise
        self._state = "finished"
        with self._store.background_lock:
            self._store.background.append(self)
        _drain_background(self._store, self._max_concurrency)

    def commit(self) -> None:
        if self._state == "committed":
            return
        if self._state not in ("open", "finished"):
            raise StorageError(f"commit after the output was {self._state}", path=self.uri)
        self._raise_part_error()
        try:
            if self.upload_id is None:
                self._put_whole()
            else:
                if self._fill:
                    self._submit_part()
                parts = [future.result() for future in self._parts]
                self._complete(parts)
            self._verify()
        except BaseException as exc:
            self.abort()
            if isinstance(exc, _Cancelled):
                raise StorageError("upload cancelled", path=self.uri) from None
            if isinstance(exc, BOTO_ERRORS):
                raise storage_error(self.uri, "upload", exc) from None
            raise
        self._state = "committed"
        self._budget.release_all(self)
        _forget_background(self._store, self)
        self._shutdown_pool()
        self._forget_marker()
        self._abort_older_uploads()

    def _put_whole(self) -> None:
        buffer, reserved = self._take_buffer()
        data = bytes(buffer)
        del buffer
        self._may_exist = True
        refused: list[bool] = []  # per try: S3 answered with a 4xx refusal

        def put() -> Any:
            try:
                return self._client.put_object(
                    Bucket=self.bucket, Key=self.key, Body=data, Metadata={RUN_KEY: self.run},
                    **self._checksum_args(data), **self._extra,
                )
            except BOTO_ERRORS as exc:
                status = getattr(exc, "response", {}).get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
                refused.append(400 <= int(status) < 500)
                raise

        try:
            self._retrying(put, "PutObject")
        except StorageError:
            # S3 refused every try: nothing was stored, so aborting has nothing
            # to remove (and no cleanup warning about an object this run never made)
            if refused and all(refused):
                self._may_exist = False
            raise
        finally:
            self._budget.release(self, reserved)

    def _complete(self, parts: list[dict[str, Any]]) -> None:
        self._may_exist = True

        def call() -> None:
            try:
                self._client.complete_multipart_upload(
                    Bucket=self.bucket, Key=self.key, UploadId=self.upload_id, MultipartUpload={"Parts": parts}
                )
            except BOTO_ERRORS as exc:
                # A retried Complete whose first attempt was applied (reply lost) may hear NoSuchUpload.
                if is_no_such_upload(exc) and self._is_ours():
                    log.info("%s: Complete answered NoSuchUpload but the object is ours; done", self.uri)
                    return
                raise

        self._retrying(call, "CompleteMultipartUpload")

    def _head(self) -> dict[str, Any] | None:
        try:
            return self._client.head_object(Bucket=self.bucket, Key=self.key)
        except BOTO_ERRORS as exc:
            if is_not_found(exc):
                return None
            raise

    def _is_ours(self) -> bool:
        head = self._head()
        return bool(head and head.get("Metadata", {}).get(RUN_KEY) == self.run)

    def _verify(self) -> None:
        head = self._head()
        if head is None or head.get("Metadata", {}).get(RUN_KEY) != self.run:
            raise StorageError("object missing or replaced right after upload", path=self.uri)
        size = int(head["ContentLength"])
        if size != self.bytes_written:
            raise StorageError(f"object has {size} bytes after upload, {self.bytes_written} were written",
                               path=self.uri)

    # ------------------------------------------------------------------ aborting

    def abort(self) -> None:
        """Stop uploading, abort the multipart upload, remove our marker and any object we created.

        Idempotent; never raises for S3 errors (an original exception is usually propagating).
        The clean-up runs on a daemon thread that this call waits for at most the store's
        ``abort_timeout`` (shared by the outputs aborted together), so Ctrl-C and SIGTERM end a
        run promptly even when S3 does not answer; what is not removed by then is logged and
        left for ``imgprep cleanup`` (or the next run writing the same key).
        """
        if self._state in ("aborted", "committed"):
            return
        self._state = "aborting"
        _forget_background(self._store, self)
        self._cancel.set()
        self._buf, self._fill = None, 0
        self._budget.release_all(self)  # parts still in flight are dropped with the upload
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)  # queued parts dropped; calls in flight stop at _cancel
        cleaner = threading.Thread(target=self._clean_up, args=(pool,), name="imgprep-s3-abort", daemon=True)
        cleaner.start()
        cleaner.join(self._store.abort_wait())
        if cleaner.is_alive():
            log.warning("%s: S3 did not confirm the abort in time; run `imgprep cleanup %s` if an upload remains",
                        self.uri, self.uri)
        self._state = "aborted"

    def _clean_up(self, pool: DaemonExecutor | None) -> None:
        if pool is not None:
            pool.join()  # a CreateMultipartUpload in flight may still deliver an upload id to abort
        if self.upload_id is not None:
            for attempt in range(3):
                try:
                    self._client.abort_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=self.upload_id)
                    break
                except BOTO_ERRORS as exc:
                    if is_no_such_upload(exc):
                        break
                    if attempt == 2 or is_silence(exc):
                        log.warning("%s: could not abort upload %s (%s); run `imgprep cleanup %s`",
                                    self.uri, self.upload_id, exc, self.uri)
                        return
                    time.sleep(0.2 * (attempt + 1))
            self._forget_marker()
        if self._may_exist:
            try:
                if self._is_ours():
                    self._client.delete_object(Bucket=self.bucket, Key=self.key)
            except BOTO_ERRORS as exc:
                log.warning("%s: could not remove the object of an aborted upload (%s)", self.uri, exc)

    def _shutdown_pool(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def _forget_marker(self) -> None:
        if self.upload_id is None:
            return
        try:
            self._client.delete_object(Bucket=self.bucket, Key=marker_key(self.key, self.upload_id))
        except BOTO_ERRORS as exc:
            log.warning("%s: could not delete upload marker (%s)", self.uri, exc)

    def _abort_older_uploads(self) -> None:
        """The next run for the same output cleans what a killed run left for this key."""
        try:
            abort_owned(self._client, self.bucket, self.key, Sweep(exact=True, started_before=self.started))
        except BOTO_ERRORS as exc:
            log.warning("%s: could not check for stale uploads (%s)", self.uri, exc)


# ---------------------------------------------------------------------- finished outputs still uploading


def _forget_background(store: S3Uploads, output: S3Output) -> None:
    with store.background_lock:
        if output in store.background:
            store.background.remove(output)


def _drain_background(store: S3Uploads, limit: int) -> None:
    """Wait (oldest first) until the store's finished outputs have at most ``limit`` parts in flight."""
    while True:
        with store.background_lock:
            pending = [f for out in store.background for f in out._parts if not f.done()]
        if len(pending) <= limit:
            return
        wait(pending[:1])
