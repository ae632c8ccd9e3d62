"""Find and abort the multipart uploads imgprep left behind (a writer killed with SIGKILL cannot abort).

ListMultipartUploads shows neither metadata nor tags, so ownership is marked with a small object
next to each upload's key, ``<dir>/.imgprep-uploads/<name>.<hash of upload id>``, holding the
writer's host and pid; the writer deletes it on commit or abort.  Only uploads with a marker are
ever aborted here: anyone else's uploads under the same prefix are left alone.
"""

from __future__ import annotations

import hashlib
import os
import socket
import time
from collections.abc import Collection
from typing import TYPE_CHECKING, Any

from imgprep.storage.s3_base import boto_errors, is_no_such_upload, is_not_found, parse_s3_uri, storage_error

if TYPE_CHECKING:
    from imgprep.storage.s3 import S3Store

MARKER_DIR = ".imgprep-uploads"
RUN_KEY = "imgprep-run"
HOST = socket.gethostname()


def marker_key(key: str, upload_id: str) -> str:
    """Key of the marker object that says "imgprep owns upload ``upload_id`` of ``key``"."""
    directory, _, name = key.rpartition("/")
    digest = hashlib.sha1(upload_id.encode()).hexdigest()[:16]
    return f"{directory + '/' if directory else ''}{MARKER_DIR}/{name}.{digest}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def abort_owned(
    client: Any, bucket: str, prefix: str, *, exact: bool, started_before: float | None, min_age: float,
    keep: Collection[str] = (),
) -> list[tuple[str, str]]:
    """Abort imgprep-marked uploads under ``prefix`` whose writer is gone, except the upload ids in
    ``keep`` (one a resumed run continues); return ``(key, upload id)``."""
    aborted: list[tuple[str, str]] = []
    now = time.time()
    for page in client.get_paginator("list_multipart_uploads").paginate(Bucket=bucket, Prefix=prefix):
        for upload in page.get("Uploads", ()):
            key, upload_id = upload["Key"], upload["UploadId"]
            if (exact and key != prefix) or upload_id in keep:
                continue
            initiated = upload["Initiated"].timestamp()
            if started_before is not None and initiated >= started_before:
                continue
            marker = marker_key(key, upload_id)
            try:
                meta = client.head_object(Bucket=bucket, Key=marker).get("Metadata", {})
            except boto_errors() as exc:
                if is_not_found(exc):
                    continue  # not marked by imgprep: someone else's upload
                raise
            host, pid = meta.get("imgprep-host"), meta.get("imgprep-pid", "")
            local_writer_alive = host == HOST and pid.isdigit() and _pid_alive(int(pid))
            writer_gone = host == HOST and not local_writer_alive
            if local_writer_alive or not (writer_gone or now - initiated >= min_age):
                continue
            try:
                client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
            except boto_errors() as exc:
                if not is_no_such_upload(exc):
                    raise
            client.delete_object(Bucket=bucket, Key=marker)
            aborted.append((key, upload_id))
    return aborted


def cleanup_stale_uploads(store: S3Store, uri: str, *, min_age: float = 3600.0) -> list[str]:
    """Abort incomplete uploads imgprep started under ``uri`` and whose writer is gone.

    An upload is imgprep's when its marker object exists.  It is stale when its writer ran on
    this host and that process is dead, or when it was started at least ``min_age`` seconds ago.
    Returns ``"s3://bucket/key (upload id)"`` for each upload aborted.
    """
    bucket, prefix = parse_s3_uri(uri)
    try:
        done = abort_owned(store.client, bucket, prefix, exact=False, started_before=None, min_age=min_age)
    except boto_errors() as exc:
        raise storage_error(uri, "cleaning up uploads", exc) from None
    return [f"s3://{bucket}/{key} ({upload_id})" for key, upload_id in done]
