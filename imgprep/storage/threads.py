"""A thread pool whose threads never hold the process up: S3 calls stuck on a silent endpoint.

``concurrent.futures.ThreadPoolExecutor`` joins its threads at interpreter exit, so one request
waiting out its read timeout keeps an interrupted run alive for minutes after Ctrl-C or SIGTERM.
These threads are daemons: whoever needs a call's result waits on its future (interruptibly),
and abort paths wait only as long as they choose.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any

_STOP = None


class DaemonExecutor(Executor):
    """Up to ``max_workers`` daemon threads, started as work arrives."""

    def __init__(self, max_workers: int, name: str) -> None:
        self._max = max(1, int(max_workers))
        self._name = name
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._idle = threading.Semaphore(0)
        self._lock = threading.Lock()
        self._closed = False

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        with self._lock:
            if self._closed:
                raise RuntimeError("cannot submit after shutdown")
            future: Future[Any] = Future()
            self._queue.put((future, fn, args, kwargs))
            if not self._idle.acquire(blocking=False) and len(self._threads) < self._max:
                thread = threading.Thread(target=self._work, name=f"{self._name}-{len(self._threads)}", daemon=True)
                self._threads.append(thread)
                thread.start()
        return future

    def _work(self) -> None:
        while True:
            task = self._queue.get()
            if task is _STOP:
                return
            future, fn, args, kwargs = task
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn(*args, **kwargs))
                except BaseException as exc:  # noqa: BLE001 - handed to whoever waits on the future
                    future.set_exception(exc)
            del task, future
            self._idle.release()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                if cancel_futures:
                    self._cancel_queued()
                for _ in self._threads:
                    self._queue.put(_STOP)
        if wait:
            self.join()

    def _cancel_queued(self) -> None:
        kept = []
        while True:
            try:
                task = self._queue.get_nowait()
            except queue.Empty:
                break
            if task is _STOP:
                kept.append(task)
            else:
                task[0].cancel()
        for task in kept:
            self._queue.put(task)

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the threads (after :meth:`shutdown`); False if some still run after ``timeout``."""
        import time

        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in list(self._threads):
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in self._threads)
