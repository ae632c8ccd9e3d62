"""Types of option values given from Python, checked as the CLI's parsers check them.

The CLI's options arrive typed (click converts and refuses); the Python API's keywords arrive as
whatever the caller wrote.  A float where an integer is meant (``resize=256.0``) or a bool used
as a number (``resize=True``, which Python counts as 1) must be refused here, with one message
naming the argument, not fail later on every image.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

from imgprep.errors import UsageError


def _got(value: Any) -> str:
    return f"got {value!r} ({type(value).__name__})"


def integer(name: str, value: Any, *, optional: bool = False) -> int | None:
    """``value`` as a plain int; a bool, float or anything else is refused naming ``name``."""
    if optional and value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise UsageError(f"{name} must be an integer{' or None' if optional else ''}, {_got(value)}")
    return int(value)


def flag(name: str, value: Any, *, optional: bool = False) -> bool | None:
    """``value`` as a bool; a number standing for one (``strict=1``) is refused naming ``name``."""
    if optional and value is None:
        return None
    if not isinstance(value, bool):
        raise UsageError(f"{name} must be True or False{' or None' if optional else ''}, {_got(value)}")
    return value


def text(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise UsageError(f"{name} must be a string, {_got(value)}")
    return value


def pair(name: str, value: Any) -> tuple[int, int] | None:
    """An optional (width, height) of integers."""
    if value is None:
        return None
    if (isinstance(value, str | bytes) or not isinstance(value, Sequence) or len(value) != 2
            or any(isinstance(v, bool) or not isinstance(v, numbers.Integral) for v in value)):
        raise UsageError(f"{name} must be (width, height) in integers, {_got(value)}")
    return (int(value[0]), int(value[1]))
