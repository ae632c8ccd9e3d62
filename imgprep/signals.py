"""SIGTERM handled like Ctrl-C, so every ``with``/``finally`` on the way out runs.

Batch schedulers (SageMaker, Kubernetes, systemd) stop work with SIGTERM; unwinding as
KeyboardInterrupt lets the packer abort temporary files and multipart uploads, and the
Processing entrypoint write its failure marker and message file.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises KeyboardInterrupt (main thread only; elsewhere a no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
