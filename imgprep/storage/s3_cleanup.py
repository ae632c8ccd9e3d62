"""Find and abort the multipart uploads imgprep left behind (a writer killed with SIGKILL cannot abort).

ListMultipartUploads shows neither metadata nor tags, so ownership is marked with a small object
next to each upload's key, ``<dir>/.imgprep-uploads/<name>.<hash of upload id>``, holding the
writer's host and pid; the writer deletes it on commit or abort.  Only uploads with a marker are
ever aborted here: anyone else's uploads under the same prefix are left alone.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from imgprep.storage.base import Cleanup
from imgprep.storage.locks import HOST, dead_here
from imgprep.storage.s3_base import (
    S3Access,
    boto_errors,
    is_no_such_upload,
    is_not_found,
    parse_s3_uri,
    storage_error,
)

MARKER_DIR = ".imgprep-uploads"
RUN_KEY = "imgprep-run"


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


@dataclass(frozen=True)
class Sweep:
    """Which of imgprep's uploads under a prefix to abort: those whose writer is gone (or older than
    ``min_age`` from another machine), but not the upload ids in ``keep`` (one a resumed run
    continues) nor the keys ``spare`` names (noted in ``spared``)."""

    exact: bool  # only the uploads of the prefix itself (one key)
    started_before: float | None = None
    min_age: float = 0.0
    keep: Collection[str] = ()
    spare: Callable[[str], bool] = lambda _key: False
    spared: list[tuple[str, str]] | None = None


def abort_owned(client: Any, bucket: str, prefix: str, sweep: Sweep) -> list[tuple[str, str]]:
    """Abort the uploads under ``prefix`` that ``sweep`` selects; return ``(key, upload id)``."""
    aborted: list[tuple[str, str]] = []
    now = time.time()
    for page in client.get_paginator("list_multipart_uploads").paginate(Bucket=bucket, Prefix=prefix):
        for upload in page.get("Uploads", ()):
            key, upload_id = upload["Key"], upload["UploadId"]
            if (sweep.exact and key != prefix) or not _stale(client, bucket, upload, sweep, now):
                continue
            if sweep.spare(key):
                if sweep.spared is not None:
                    sweep.spared.append((key, upload_id))
                continue
            try:
                client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
            except boto_errors() as exc:
                if not is_no_such_upload(exc):
                    raise
            client.delete_object(Bucket=bucket, Key=marker_key(key, upload_id))
            aborted.append((key, upload_id))
    return aborted


def _stale(client: Any, bucket: str, upload: dict[str, Any], sweep: Sweep, now: float) -> bool:
    """Whether ``upload`` is imgprep's (it has a marker) and its writer is gone."""
    key, upload_id = upload["Key"], upload["UploadId"]
    if upload_id in sweep.keep:
        return False
    initiated = upload["Initiated"].timestamp()
    if sweep.started_before is not None and initiated >= sweep.started_before:
        return False
    try:
        meta = client.head_object(Bucket=bucket, Key=marker_key(key, upload_id)).get("Metadata", {})
    except boto_errors() as exc:
        if is_not_found(exc):
            return False  # not marked by imgprep: someone else's upload
        raise
    host, pid = meta.get("imgprep-host"), meta.get("imgprep-pid", "")
    local_writer_alive = host == HOST and pid.isdigit() and _pid_alive(int(pid))
    writer_gone = host == HOST and not local_writer_alive
    return not local_writer_alive and (writer_gone or now - initiated >= sweep.min_age)


def cleanup_stale_uploads(store: S3Access, uri: str, *, min_age: float = 3600.0) -> Cleanup:
    """Abort incomplete uploads imgprep started under ``uri`` and whose writer is gone.

    An upload is imgprep's when its marker object exists.  It is stale when its writer ran on
    this host and that process is dead, or when it was started at least ``min_age`` seconds ago
    — unless its output's lock (``PREFIX.lock``) is held by a writer that may be alive: a run on
    another host is never cut off, whatever its age.  Markers whose upload is gone (a writer
    killed between completing the upload and deleting the marker) are removed too.
    """
    bucket, prefix = parse_s3_uri(uri)
    done = Cleanup()
    try:
        markers = list_markers(store.client, bucket, prefix)  # before the uploads: see remove_orphan_markers
        locks: dict[str, bool] = {}

        def spare(key: str) -> bool:
            lock = _LOCKED.sub("", key) + ".lock"
            if lock not in locks:
                locks[lock] = _lock_is_live(store.client, bucket, lock)
            return locks[lock]

        aborted = abort_owned(store.client, bucket, prefix,
                              Sweep(exact=False, min_age=min_age, spare=spare, spared=done.held))
        done.aborted = [f"s3://{bucket}/{key} ({upload_id})" for key, upload_id in aborted]
        done.held = [f"s3://{bucket}/{key} ({upload_id})" for key, upload_id in done.held]
        done.markers = [f"s3://{bucket}/{m}" for m in remove_orphan_markers(store.client, bucket, prefix, markers)]
    except boto_errors() as exc:
        raise storage_error(uri, "cleaning up uploads", exc) from None
    return done


_LOCKED = re.compile(r"(?:-\d{5,})?\.(?:rec|idx)$")  # PREFIX.rec, PREFIX-00003.idx, ... -> PREFIX


def _lock_is_live(client: Any, bucket: str, lock: str) -> bool:
    """Whether ``lock`` exists and its holder may be running (anything but a dead process of this host)."""
    try:
        raw = client.get_object(Bucket=bucket, Key=lock)["Body"].read()
    except boto_errors() as exc:
        if is_not_found(exc):
            return False
        raise
    return not dead_here(raw)


def list_markers(client: Any, bucket: str, prefix: str) -> list[str]:
    """The marker objects of uploads of keys under ``prefix``."""
    directory, _, name = prefix.rpartition("/")
    own = f"{directory + '/' if directory else ''}{MARKER_DIR}/{name}"
    found: set[str] = set()
    for start in (prefix, own):
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=start):
            for item in page.get("Contents", ()):
                key = item["Key"]
                if key.startswith(own) or f"/{MARKER_DIR}/" in key[len(prefix):] or key[len(prefix):].startswith(
                        f"{MARKER_DIR}/"):
                    found.add(key)
    return sorted(found)


def remove_orphan_markers(client: Any, bucket: str, prefix: str, markers: list[str]) -> list[str]:
    """Delete those of ``markers`` (listed *before* this call) whose upload no longer exists.

    A marker is written after its upload is created, so an upload whose marker was listed is
    in the listing of uploads made after it, unless it was completed or aborted in between:
    then its marker is stale anyway.
    """
    if not markers:
        return []
    live = set()
    for page in client.get_paginator("list_multipart_uploads").paginate(Bucket=bucket, Prefix=prefix):
        for upload in page.get("Uploads", ()):
            live.add(marker_key(upload["Key"], upload["UploadId"]))
    removed = [m for m in markers if m not in live]
    for marker in removed:
        client.delete_object(Bucket=bucket, Key=marker)
    return removed
