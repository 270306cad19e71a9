"""CancelToken: how a running handler learns that its run was cancelled (thread-safe)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from tasker_worker.sdk.errors import StepCancelled

__all__ = ["CancelToken"]

log = logging.getLogger("tasker.worker.sdk")


class CancelToken:
    """Set once when the run it belongs to is cancelled: the task was cancelled, the step
    was resolved or handed to another attempt, or the handler ran past its timeout.

    `async def` handlers are also cancelled at their next `await` (asyncio's CancelledError,
    Trio's Cancelled). A sync handler runs in a thread that cannot be stopped from outside:
    it should look at `cancelled` (or call `check`) between units of work, sleep with `wait`,
    or register `on_cancel` to interrupt a blocking call (close a socket, cancel a query).
    """

    __slots__ = ("_callbacks", "_event", "_expires", "_lock", "_reason")

    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._callbacks: list[Callable[[str], object]] = []
        self._reason: str | None = None
        self._expires: float | None = None  # time.perf_counter() of the run's timeout

    @property
    def cancelled(self) -> bool:
        """True once the run was cancelled, or once its timeout has passed (true from that
        instant, before the worker has stopped the run)."""
        return self._event.is_set() or (self._expires is not None
                                        and time.perf_counter() >= self._expires)

    def expire_at(self, deadline: float) -> None:
        """The worker's: the run times out at `deadline` (`time.perf_counter()` seconds)."""
        self._expires = deadline

    @property
    def reason(self) -> str | None:
        """Why the run was cancelled (None while it was not)."""
        return self._reason

    def cancel(self, reason: str) -> None:
        """Cancel the run (the worker calls this; the first reason is kept) and call every
        registered callback once, in this thread."""
        with self._lock:
            if self._event.is_set():
                return
            self._reason = reason
            self._event.set()
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            _call(callback, reason)

    def on_cancel(self, callback: Callable[[str], object]) -> Callable[[], None]:
        """Call `callback(reason)` when the run is cancelled (at once if it already is).

        It runs in the worker's thread, not the handler's: keep it short and thread-safe.
        Returns a function that unregisters it.
        """
        with self._lock:
            if not self._event.is_set():
                self._callbacks.append(callback)
                return lambda: self._forget(callback)
        _call(callback, self._reason or "cancelled")
        return lambda: None

    def wait(self, timeout: float | None = None) -> bool:
        """Block up to `timeout` seconds (forever with None) or until cancelled; True when
        cancelled. A sync handler's interruptible `time.sleep`."""
        return self._event.wait(timeout)

    def check(self) -> None:
        """Raise StepCancelled when the run was cancelled."""
        if self.cancelled:
            raise StepCancelled(self._reason or "timed out")

    def _forget(self, callback: Callable[[str], object]) -> None:
        with self._lock:
            if callback in self._callbacks:
                self._callbacks.remove(callback)


def _call(callback: Callable[[str], object], reason: str) -> None:
    try:
        callback(reason)
    except Exception:
        log.exception("a handler's on_cancel callback failed")
