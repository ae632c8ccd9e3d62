"""Choose the image path once per run: the native libjpeg-turbo core when built, else Pillow.

``IMGPREP_NATIVE=0`` forces the Pillow path (benchmarks, parity checks); ``IMGPREP_NATIVE=1``
makes a missing native core an error instead of a silent fallback.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from imgprep.errors import UsageError
from imgprep.imaging.spec import TransformSpec
from imgprep.requirements import require

BytesTransform = Callable[[bytes, TransformSpec, str], bytes]
PixelsTransform = Callable[[Any, TransformSpec, str], bytes]


@dataclass(frozen=True)
class ImagePath:
    name: str  # "native" or "pillow"
    reason: str
    transform_bytes: BytesTransform
    transform_pixels: PixelsTransform
    preferred_executor: str  # "thread" or "process"


def _native_status() -> tuple[bool, str]:
    try:
        from imgprep.imaging import native
    except ImportError as exc:
        return False, f"native module unavailable ({exc})"
    if not native.available():
        return False, native.status()
    return True, native.status()


def select(prefer_native: bool | None = None) -> ImagePath:
    """The image path to use; ``prefer_native=None`` reads ``IMGPREP_NATIVE``."""
    from imgprep.imaging import native

    required = native.switch()
    if prefer_native is None:
        prefer_native = required is not False
    if prefer_native:
        ok, why = _native_status()
        if ok:
            from imgprep.imaging import native

            return ImagePath(
                "native", why, native.transform_bytes, native.transform_pixels, native.PREFERRED_EXECUTOR
            )
        if required:
            raise UsageError(f"{native.ENV_SWITCH} is on but the native path cannot run: {why}")
    else:
        why = "native path disabled"
    # Imported only here: PIL costs ~8 ms of start-up that the native path does not need.
    require("PIL")
    from imgprep.imaging import pillow

    reason = f"Pillow {pillow.version()} ({why})"
    return ImagePath("pillow", reason, pillow.transform_bytes, pillow.transform_pixels, "process")
