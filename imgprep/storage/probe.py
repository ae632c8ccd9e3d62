"""Fail before the work: one cheap S3 call per location, before any image is read.

Without this, a run without credentials (or with a misspelt bucket) reads and hashes every
image first and fails at its first upload.  The probe makes the call the run will need — a
small PutObject and its DeleteObject for an output, a HEAD or a one-key listing for an input —
and turns whatever S3 answers into one line naming the location and the cause.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING

from imgprep.errors import StorageError
from imgprep.storage.s3_base import S3Access, S3Reads, error_code, is_not_found, is_silence, parse_s3_uri

if TYPE_CHECKING:
    from imgprep.storage.base import Store


PROBE_NAME = ".imgprep-probe-"

_CAUSES = {
    "NoSuchBucket": "the bucket {bucket} does not exist",
    "InvalidAccessKeyId": "the access key is not known to this endpoint (wrong credentials or endpoint)",
    "SignatureDoesNotMatch": "the secret key does not match the access key (wrong credentials)",
    "AccessDenied": "access denied (these credentials may not {action} it)",
    "AllAccessDisabled": "access denied (these credentials may not {action} it)",
    "403": "access denied (these credentials may not {action} it)",
    "InvalidBucketName": "{bucket} is not a valid bucket name",
    "ExpiredToken": "the session token has expired (refresh the credentials)",
    "InvalidToken": "the session token is not valid (refresh the credentials)",
}


def check_access(store: Store, *, reads: Iterable[object] = (), writes: Iterable[object] = (),
                 images: Iterable[object] = ()) -> None:
    """Probe every output, input and image root of a run through ``store`` (outputs first;
    anything that is not a string — None, an in-memory source — is skipped): what would fail
    the run fails now, before any image is read.  ``images`` are read with the client that will
    read the images (on S3: obstore, not botocore)."""
    seen: set[tuple[str, bool, bool]] = set()
    wanted = [*((w, True, False) for w in writes), *((r, False, False) for r in reads),
              *((i, False, True) for i in images)]
    for uri, write, image_root in wanted:
        if isinstance(uri, os.PathLike):
            uri = os.fspath(uri)
        if not isinstance(uri, str) or not uri or (uri, write, image_root) in seen:
            continue
        seen.add((uri, write, image_root))
        if image_root:
            store.probe(uri, write=False, images=True)
        else:
            store.probe(uri, write=write)


def probe_s3(store: S3Access, uri: str, *, write: bool) -> None:
    """Check that ``uri`` can be written (``write``) or read with this store's credentials.

    An input that does not exist is left to the run (it says which file); everything else that
    would fail the run later fails here, as a :class:`StorageError` naming ``uri``.
    """
    bucket, key = parse_s3_uri(uri)
    action = "write under" if write else "read"
    try:
        client = store.client
        if not _bucket_exists(client, bucket, store.errors):
            raise StorageError(f"cannot {action} this location: {no_bucket(bucket, client)}", path=uri)
        if write:
            # beside what the run writes: "x/train" -> "x/train.imgprep-probe-…", "x/" -> "x/.imgprep-probe-…"
            sep = "" if not key or key.endswith("/") else "."
            probe = f"{key}{sep}{PROBE_NAME.lstrip('.') if sep else PROBE_NAME}{os.getpid()}-{uuid.uuid4().hex[:8]}"
            client.put_object(Bucket=bucket, Key=probe, Body=b"")
            client.delete_object(Bucket=bucket, Key=probe)
        elif not key or key.endswith("/"):
            client.list_objects_v2(Bucket=bucket, Prefix=key, MaxKeys=1)
        else:
            try:
                client.head_object(Bucket=bucket, Key=key)
            except store.errors as exc:
                if not is_not_found(exc):
                    raise
                # not an object: a prefix (an image root given without its slash) is fine too
                client.list_objects_v2(Bucket=bucket, Prefix=key.rstrip("/") + "/", MaxKeys=1)
    except StorageError:
        raise
    except Exception as exc:  # noqa: BLE001 - every botocore failure becomes the one line below
        raise StorageError(f"cannot {action} this location: {cause(exc, bucket, action, uri)}",
                           path=uri) from None


def no_bucket(bucket: str, client: object) -> str:
    """A missing bucket, naming the endpoint that said so: one answering 404 to everything (a
    mistyped --endpoint-url, a web server) looks exactly like it."""
    endpoint = getattr(getattr(client, "meta", None), "endpoint_url", None)
    where = f" at {endpoint} (is --endpoint-url right?)" if endpoint else ""
    return f"the bucket {bucket} does not exist{where}"


_CODE = re.compile(r"<Code>([A-Za-z0-9]+)</Code>")
NO_CREDENTIALS = ("no AWS credentials were found (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, "
                  "or run where a role provides them)")


def probe_image_root(store: S3Reads, uri: str) -> None:
    """Check that the image root ``uri`` (a prefix) can be listed, through obstore: one LIST of
    at most one key, with the same lines as :func:`probe_s3` for the same causes."""
    import obstore

    bucket, key = parse_s3_uri(uri)
    try:
        objects = store.object_store(bucket)
    except StorageError:  # the one failure of making it: no credentials anywhere in botocore's chain
        raise StorageError(f"cannot read this location: {NO_CREDENTIALS}", path=uri) from None
    try:
        next(iter(obstore.list(objects, prefix=key.strip("/") or None, chunk_size=1)), None)
    except Exception as exc:  # noqa: BLE001 - every obstore failure becomes the one line below
        why = _objects_cause(exc, bucket, store.config.endpoint)
        raise StorageError(f"cannot read this location: {why}", path=uri) from None


def _objects_cause(exc: BaseException, bucket: str, endpoint: str | None) -> str:
    """obstore's error text carries S3's XML answer (its ``Code``) or says no answer came."""
    text = str(exc)
    found = _CODE.search(text)
    code = found.group(1) if found else ""
    if not code and "403 Forbidden" in text:
        code = "403"
    if code == "NoSuchBucket":
        where = f" at {endpoint} (is --endpoint-url right?)" if endpoint else ""
        return f"the bucket {bucket} does not exist{where}"
    if code in _CAUSES:
        return _CAUSES[code].format(bucket=bucket, action="read", where=bucket)
    if "status code" not in text:
        return f"the endpoint does not answer ({_gist(text)})"
    return code or _gist(text)


def _gist(text: str) -> str:
    """obstore's first line, without its Rust debug chain."""
    first = text.strip().split("\n", 1)[0]
    return " ".join(first.split())[:300]


def _bucket_exists(client: object, bucket: str, errors: tuple[type[Exception], ...]) -> bool:
    """HeadBucket: False for a missing bucket (some servers would create one on the first
    PutObject instead of refusing it).  A 403 here says nothing: the credentials may lack
    ``s3:ListBucket`` yet may write, which the next call finds out."""
    try:
        client.head_bucket(Bucket=bucket)  # type: ignore[attr-defined]
    except errors as exc:
        code = error_code(exc)
        if code in ("404", "NoSuchBucket", "NotFound"):
            return False
        if code not in ("403", "AccessDenied", "301", "PermanentRedirect"):
            raise
    return True


def cause(exc: BaseException, bucket: str, action: str, where: str) -> str:
    """Why an S3 call failed, in words a user can act on."""
    name = type(exc).__name__
    if name in ("NoCredentialsError", "PartialCredentialsError"):
        return NO_CREDENTIALS
    if name in ("ProfileNotFound", "NoRegionError"):
        return " ".join(str(exc).split())
    code = error_code(exc)
    if code in _CAUSES:
        return _CAUSES[code].format(bucket=bucket, action=action, where=where)
    if is_not_found(exc) and action == "write under":
        return f"the bucket {bucket} does not exist"
    try:
        silent = is_silence(exc)
    except ImportError:
        silent = False
    if silent:
        return f"the endpoint does not answer ({' '.join(str(exc).split())})"
    if code:
        message = getattr(exc, "response", {}).get("Error", {}).get("Message") or ""
        return f"{code}: {message}" if message else code
    return " ".join(str(exc).split()) or name
