"""Heartbeats, the worker's side: write a running handler's progress reports, extend its
claim's lease at once, and cancel the run when the report finds the claim lost."""

from __future__ import annotations

import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Future, InvalidStateError
from typing import Any

import structlog
import trio

from tasker_shared.db.database import Database
from tasker_worker.runtime.cancellation import RunControl, lost_reason
from tasker_worker.runtime.claims import ClaimedStep, heartbeat_step
from tasker_worker.sdk.heartbeat import HeartbeatReport

log = structlog.get_logger("tasker.worker")

# At most one write per running step in this long; reports in between are coalesced and
# the latest is written when it ends (a handler reporting every item costs little WAL).
MIN_INTERVAL_SECONDS = 1.0


class Heartbeats:
    """Writes the heartbeats of this worker's handler runs; `serve` runs alongside them."""

    def __init__(self, db: Database, *, lease_seconds: float, worker_id: str,
                 min_interval: float = MIN_INTERVAL_SECONDS) -> None:
        self.db = db
        self.lease_seconds = lease_seconds
        self.worker_id = worker_id
        self.min_interval = min_interval
        self.written = 0
        self.lost = 0
        self._nursery: trio.Nursery | None = None

    async def serve(self) -> None:
        """Forever: the writes of heartbeats run here (cancelled when the worker stops)."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            try:
                await trio.sleep_forever()
            finally:
                self._nursery = None

    def for_run(self, step: ClaimedStep, control: RunControl) -> RunHeartbeat:
        """The heartbeat sink of one run (call from the Trio thread)."""
        return RunHeartbeat(self, step, control, trio.lowlevel.current_trio_token())

    def _spawn(self, work: Callable[[], Awaitable[None]], done: Future[None] | None) -> None:
        """Start `work` (in the Trio thread); without a running `serve`, drop it."""
        if self._nursery is not None:
            try:
                self._nursery.start_soon(work)
                return
            except RuntimeError:  # closing: the worker is stopping
                pass
        _resolve(done)

    async def write(self, step: ClaimedStep, control: RunControl, report: dict[str, Any]) -> None:
        """Write one report; cancel the run if its claim is lost. A database that does not
        answer within a third of the lease only costs this report (the periodic extension
        keeps the lease meanwhile)."""
        with trio.move_on_after(max(self.lease_seconds / 3.0, 0.5)) as scope:
            try:
                held, state, attempts = await self.db.run_autocommit(
                    heartbeat_step, step, report, self.lease_seconds)
            except Exception as exc:
                log.warning("heartbeat_failed", step_uuid=str(step.step_uuid), error=str(exc))
                return
        if scope.cancelled_caught:
            log.warning("heartbeat_failed", step_uuid=str(step.step_uuid), error="timed out")
            return
        self.written += 1
        if held:
            return
        self.lost += 1
        found = state if attempts in (None, step.attempt) else f"{state} under attempt {attempts}"
        log.info("handler_cancelled", action="cancel", step_uuid=str(step.step_uuid),
                 attempt=step.attempt, state=found, via="heartbeat")
        control.cancel(lost_reason(step.attempt, found))


class RunHeartbeat:
    """One handler run's heartbeat sink (thread-safe): a report is written at once unless
    one was written less than `min_interval` ago; then it waits to be written when that
    interval ends (only the latest such report is)."""

    def __init__(self, owner: Heartbeats, step: ClaimedStep, control: RunControl,
                 token: trio.lowlevel.TrioToken) -> None:
        self._owner = owner
        self._step = step
        self._control = control
        self._token = token
        self._lock = threading.Lock()
        self._next_write = 0.0  # time.monotonic() from which a report is written at once
        self._pending: dict[str, Any] | None = None
        self._deferred = False
        self._closed = False

    def send(self, report: HeartbeatReport) -> Future[None]:
        done: Future[None] = Future()
        payload = {**report.to_json(), "attempt": self._step.attempt,
                   "worker_id": self._owner.worker_id}
        with self._lock:
            now = time.monotonic()
            if self._closed:
                now_due, defer_for = False, None
            elif now >= self._next_write:
                self._next_write = now + self._owner.min_interval
                self._pending = None
                now_due, defer_for = True, None
            else:
                self._pending = payload
                defer_for = None if self._deferred else self._next_write - now
                self._deferred = True
                now_due = False
        if now_due:
            self._start(lambda: self._write_now(payload, done), done)
        else:
            _resolve(done)
            if defer_for is not None:
                self._start(lambda: self._write_later(defer_for), None)
        return done

    def close(self) -> None:
        """The run is over: write nothing more for it."""
        with self._lock:
            self._closed = True
            self._pending = None

    def _start(self, work: Callable[[], Awaitable[None]], done: Future[None] | None) -> None:
        try:
            self._token.run_sync_soon(self._owner._spawn, work, done)
        except trio.RunFinishedError:  # the worker has stopped
            _resolve(done)

    async def _write_now(self, payload: dict[str, Any], done: Future[None]) -> None:
        try:
            if not self._control.token.cancelled:
                await self._owner.write(self._step, self._control, payload)
        finally:
            _resolve(done)

    async def _write_later(self, delay: float) -> None:
        await trio.sleep(delay)
        with self._lock:
            payload, self._pending = self._pending, None
            self._deferred = False
            if payload is None or self._closed:
                return
            self._next_write = time.monotonic() + self._owner.min_interval
        if not self._control.token.cancelled:
            await self._owner.write(self._step, self._control, payload)


def _resolve(done: Future[None] | None) -> None:
    """Mark `done` finished (it may have been cancelled by an asyncio waiter meanwhile)."""
    if done is None:
        return
    try:
        if not done.done():
            done.set_result(None)
    except InvalidStateError:
        pass
