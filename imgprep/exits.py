"""From an error that reached an entry point to an exit status and one line: one table for both faces.

The ``imgprep`` command (:mod:`imgprep.cli.main`) and the Processing entrypoint
(:mod:`imgprep.processing.command`) both ask :func:`failure` what an exception means; they differ
only in where the line goes (the Processing one also writes the platform's message file) and in
where a bug's traceback goes (a log file on a terminal, the job's log on the platform).

Exit statuses: 0 success, 1 error, 2 usage error, 3 a bad image with ``--strict``, 130 interrupted.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import click

from imgprep.errors import ImgprepError

INTERRUPTED = ("interrupted; nothing was committed (shards already published are kept: "
               "rerun with --resume to continue)")


@dataclass(frozen=True)
class Failure:
    """What an exception means to the user: the exit status and the one-line reason ("" for none)."""

    status: int
    reason: str
    bug: bool = False  # not an imgprep error: the traceback must reach someone
    interrupted: bool = False


def failure(exc: BaseException) -> Failure:
    """The exit status and reason for ``exc`` (an :class:`ImgprepError`, click's, the system's, a bug)."""
    if isinstance(exc, ImgprepError):
        return Failure(exc.exit_code, str(exc))
    if isinstance(exc, click.exceptions.Exit):
        return Failure(exc.exit_code, "")
    if isinstance(exc, click.ClickException):
        return Failure(exc.exit_code, exc.format_message())
    if isinstance(exc, KeyboardInterrupt | click.exceptions.Abort):
        detail = str(exc) if isinstance(exc, KeyboardInterrupt) else ""
        return Failure(130, f"interrupted ({detail})" if detail else "interrupted", interrupted=True)
    if isinstance(exc, BrokenPipeError):
        return Failure(1, "")  # the reader went away (`imgprep ... | head`): nothing to say to it
    if isinstance(exc, MemoryError):
        return Failure(1, "out of memory")
    if isinstance(exc, OSError):
        return Failure(1, describe_os_error(exc))
    return Failure(1, f"internal error (a bug in imgprep, please report it): {type(exc).__name__}: {exc}", bug=True)


def describe_os_error(exc: OSError) -> str:
    """``FILE: reason`` for an operating-system error that nothing below turned into a message."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    names = [n for n in (exc.filename, exc.filename2) if n is not None]
    where = " -> ".join(os.fsdecode(n) if isinstance(n, bytes) else str(n) for n in names)
    return f"{where}: {reason}" if where else reason
