"""Progress of one pass over the images or records, wherever stderr goes.

On a terminal a bar (tqdm) is redrawn in place; anywhere else — a file, a pipe, a CI log, a
Processing job's CloudWatch stream — a redrawn bar is either nothing (tqdm draws only on
terminals here) or thousands of carriage returns.  There a pass writes plain lines instead: one
as it starts, one every :data:`INTERVAL` seconds, one at its end, each with the pass's name,
done/total, rate, elapsed time and the time left, so a ten-minute run is never ten minutes of
silence in a log.

Every command picks its meter with :func:`meter`: ``quiet`` silences both kinds, ``progress=True``
(``--progress``) forces lines (a terminal included: for ``script``/``tee`` logs), ``progress=False``
turns both off (the Python API's default).  In automatic mode a pass that ends within its first
:data:`DELAY` seconds (or the interval, when shorter) writes nothing, so short commands keep their
output as it was; with ``--progress`` every pass writes from its start.  ``IMGPREP_PROGRESS_INTERVAL`` sets the interval
in seconds (a log that wants a line a minute; tests use a tiny one).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import IO, Any

INTERVAL = 30.0  # seconds between lines
DELAY = 5.0  # automatic mode: a pass shorter than this writes no line at all


def interval() -> float:
    """The interval between lines: ``IMGPREP_PROGRESS_INTERVAL`` (seconds) or :data:`INTERVAL`."""
    text = os.environ.get("IMGPREP_PROGRESS_INTERVAL", "")
    try:
        value = float(text) if text else INTERVAL
    except ValueError:
        value = INTERVAL
    return value if value >= 0 else INTERVAL


def kind(*, quiet: bool = False, progress: bool | None = None, stream: IO[str] | None = None) -> str:
    """``"bar"``, ``"lines"`` or ``"off"`` for a pass writing to ``stream`` (stderr)."""
    if quiet or progress is False:
        return "off"
    if progress:
        return "lines"
    stream = stream or sys.stderr
    return "bar" if _isatty(stream) else "lines"


def _isatty(stream: IO[str]) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # a closed or replaced stream
        return False


class Off:
    """The meter nobody sees."""

    def update(self, n: int = 1) -> None:
        pass

    def set_total(self, total: int | None) -> None:
        pass

    def resume_at(self, done: int) -> None:
        """Start the count at ``done`` (a resumed run): the rate counts only this run's work."""

    def close(self, failed: bool = False) -> None:
        pass

    def __enter__(self) -> Off:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        self.close(failed=exc_type is not None)


class Lines(Off):
    """Plain progress lines: at the start, every ``every`` seconds, at the end (a clean end only:
    a pass that fails says so in its error, not in a progress line)."""

    def __init__(self, label: str, total: int | None, unit: str = "img", *, stream: IO[str] | None = None,
                 every: float | None = None, delay: float = 0.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.label, self.total, self.unit = label, total, unit
        self.stream = stream or sys.stderr
        self.every = interval() if every is None else every
        self.delay, self.clock = delay, clock
        self.done = self.base = 0
        self.start = clock()
        self.next = self.start + delay
        self.started = False
        if delay <= 0:
            self._write()

    def update(self, n: int = 1) -> None:
        self.done += n
        if self.clock() >= self.next:
            self._write()

    def set_total(self, total: int | None) -> None:
        self.total = total

    def resume_at(self, done: int) -> None:
        self.done = self.base = done

    def close(self, failed: bool = False) -> None:
        if self.started and not failed:
            self._write(end=True)
        self.started = False  # closed: nothing more

    def _write(self, end: bool = False) -> None:
        now = self.clock()
        self.started = True
        self.next = now + self.every
        print(self.line(now, end), file=self.stream, flush=True)

    def line(self, now: float, end: bool = False) -> str:
        elapsed = max(0.0, now - self.start)
        rate = (self.done - self.base) / elapsed if elapsed > 0 else 0.0
        total = f"/{self.total:,}" if self.total is not None else ""
        share = f" ({100.0 * self.done / self.total:.0f}%)" if self.total else ""
        if end:
            left = "done"
        elif self.total is not None and rate > 0:
            left = f"ETA {clock_text(max(0, self.total - self.done) / rate)}"
        else:
            left = "ETA unknown"
        return (f"imgprep: {self.label}: {self.done:,}{total} {self.unit}{share}, {rate:,.0f} {self.unit}/s, "
                f"elapsed {clock_text(elapsed)}, {left}")


def clock_text(seconds: float) -> str:
    """``h:mm:ss`` (or ``m:ss``) for a log line."""
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class _Bar(Off):
    def __init__(self, bar: Any) -> None:
        self.bar = bar

    def update(self, n: int = 1) -> None:
        self.bar.update(n)

    def set_total(self, total: int | None) -> None:
        self.bar.total = total
        self.bar.refresh()

    def resume_at(self, done: int) -> None:
        self.bar.update(done)

    def close(self, failed: bool = False) -> None:
        self.bar.close()


def meter(label: str, total: int | None, unit: str = "img", *, quiet: bool = False,
          progress: bool | None = None, leave: bool = True) -> Off:
    """The meter of one pass (see the module's text); use it as a context manager, or ``close`` it."""
    chosen = kind(quiet=quiet, progress=progress)
    if chosen == "off":
        return Off()
    if chosen == "lines":
        return Lines(label, total, unit, delay=0.0 if progress else min(DELAY, interval()))
    from tqdm import tqdm  # and the multiprocessing it loads: only for a bar someone sees

    return _Bar(tqdm(total=total, unit=unit, file=sys.stderr, dynamic_ncols=True, smoothing=0.1, desc=label,
                     leave=leave))
