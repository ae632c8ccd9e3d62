"""What the user says about S3: :class:`S3Config`, every field a user option.

Apart from the store (:mod:`imgprep.storage.s3`) so that every run can check and hold its S3
options without importing the store: a local run never loads it.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from imgprep.errors import UsageError
from imgprep.storage.s3_base import MiB

CHECKSUMS = ("CRC32", "CRC32C", "SHA1", "SHA256", "MD5", "NONE")


@dataclass(frozen=True)
class S3Config:
    """How to reach S3 and how to upload; every field is a user option (unknown names are errors).

    Client: ``endpoint_url`` (else ``AWS_ENDPOINT_URL``, else AWS), ``region_name``,
    ``max_attempts`` (botocore *standard* retries), ``max_pool_connections``, ``connect_timeout``,
    ``read_timeout``.  A call that gets no answer fails after ``max_attempts × read_timeout`` plus
    botocore's backoff (at most 1 + 2 + 4 + 8 s): 115 s with the defaults; S3 keeps slow calls
    (CompleteMultipartUpload, copies) alive with whitespace, so 20 s of silence means a dead
    endpoint.  ``abort_timeout``: how long aborting outputs may wait for S3 (Ctrl-C and SIGTERM
    end a run within it; what is left is for ``imgprep cleanup``).
    Uploads (see :mod:`imgprep.storage.s3_multipart`): ``part_size``,
    ``max_concurrency`` (parts in flight per output), ``checksum``, ``part_retries``,
    ``upload_memory`` (the one budget of part
    buffers all of this store's outputs share, see :mod:`imgprep.storage.budget`).
    Image reads: ``prefetch`` (most images held ahead of the packer), ``prefetch_bytes`` (about how
    many bytes of them: large photos are fetched fewer at a time, small ones further ahead),
    ``fetch_workers`` (concurrent GETs).
    """

    endpoint_url: str | None = None
    region_name: str | None = None
    max_attempts: int = 5
    max_pool_connections: int = 16
    connect_timeout: float = 5.0
    read_timeout: float = 20.0
    abort_timeout: float = 3.0
    part_size: int = 8 * MiB
    max_concurrency: int = 4
    checksum: str = "CRC32"
    part_retries: int = 3
    upload_memory: int = 40 * MiB
    prefetch: int = 256
    prefetch_bytes: int = 8 * MiB
    fetch_workers: int = 16

    def __post_init__(self) -> None:
        object.__setattr__(self, "checksum", self.checksum.upper())
        if self.checksum not in CHECKSUMS:
            raise UsageError(f"unknown checksum {self.checksum!r} (one of {', '.join(CHECKSUMS)})")
        for name in ("max_attempts", "max_pool_connections", "max_concurrency", "prefetch", "prefetch_bytes",
                     "fetch_workers", "upload_memory"):
            if int(getattr(self, name)) < 1:
                raise UsageError(f"S3 option {name} must be at least 1, got {getattr(self, name)}")
        for name in ("connect_timeout", "read_timeout"):
            if float(getattr(self, name)) <= 0:
                raise UsageError(f"S3 option {name} must be positive, got {getattr(self, name)}")
        if self.part_retries < 0:
            raise UsageError(f"S3 option part_retries must not be negative, got {self.part_retries}")

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> S3Config:
        """From a mapping of option names (``None`` values mean "default"); unknown names are errors."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise UsageError(f"unknown S3 option(s): {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        return cls(**{k: v for k, v in options.items() if v is not None})

    @property
    def endpoint(self) -> str | None:
        return self.endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or None
