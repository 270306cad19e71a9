"""StreamTaskStatus: the state of one task (and its steps) as it changes.

Driven by the transition NOTIFYs (see streams.StatusHub). The watcher subscribes first, then
reads a snapshot, so no change can fall between the two. An event that does not continue the
known state (it predates the snapshot, or events were dropped) triggers a re-read, and so does
a quiet period of `stream_resync_seconds` as a safety net (every poll interval when the
gateway has no listener). The watch ends once the task has its outcome: a terminal state, or
blocked by failures (nothing of it runs any more; an operator must act).

`TaskWatch` is an async iterator whose `__anext__` holds no state across calls besides its
fields, so each item may be pulled from a different task (the gRPC bridge does that).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

import trio

from tasker_gateway.context import GatewayContext
from tasker_gateway.models.common import StepState, TaskState
from tasker_gateway.models.tasks import StatusUpdate, UpdateType
from tasker_gateway.streams import StateEvent, Subscription
from tasker_shared.db.database import Conn
from tasker_shared.domain.states import TASK_SETTLED
from tasker_shared.errors import NotFoundError, Unavailable

_FINAL = {TaskState.COMPLETE: UpdateType.TASK_COMPLETE,
          TaskState.RESOLVED_MANUALLY: UpdateType.TASK_COMPLETE,
          TaskState.ERROR: UpdateType.TASK_ERROR,
          TaskState.CANCELLED: UpdateType.TASK_ERROR,
          TaskState.BLOCKED_BY_FAILURES: UpdateType.TASK_ERROR}


@dataclass(frozen=True, kw_only=True, slots=True)
class Snapshot:
    task_state: str
    steps: dict[UUID, tuple[str, str]]  # step -> (name, state)


def read_snapshot(conn: Conn, task_uuid: UUID) -> Snapshot:
    rows = conn.execute("SELECT * FROM tasker.get_task_state_snapshot_v1(%s)", (task_uuid,)
                        ).fetchall()
    if not rows:
        raise NotFoundError(f"task {task_uuid} not found")
    return Snapshot(task_state=rows[0]["task_state"] or "pending",
                    steps={r["step_uuid"]: (r["step_name"], r["step_state"])
                           for r in rows if r["step_uuid"] is not None})


class TaskWatch:
    """Async iterator of StatusUpdates for one task; `close()` when done."""

    def __init__(self, ctx: GatewayContext, task_uuid: UUID, *, include_steps: bool) -> None:
        self.ctx = ctx
        self.task_uuid = task_uuid
        self.include_steps = include_steps
        settings = ctx.settings
        self.resync_seconds = (settings.gateway.stream_resync_seconds if ctx.runtime.listening
                               else settings.queues.poll_interval_ms / 1000)
        self._pending: deque[StatusUpdate] = deque()
        self._task_state: str | None = None
        self._steps: dict[UUID, tuple[str, str]] = {}
        self._sub: Subscription | None = None
        self._done = False
        self.resyncs = 0

    async def start(self) -> None:
        """Subscribe, then read the snapshot the first updates describe."""
        if self.ctx.hub.active >= self.ctx.settings.gateway.max_streams:
            raise Unavailable("too many task status streams open; retry later", retry_after=5)
        self._sub = self.ctx.hub.subscribe(self.task_uuid)
        try:
            await self._resync()
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self._sub is not None:
            self.ctx.hub.unsubscribe(self._sub)
            self._sub = None

    def __aiter__(self) -> TaskWatch:
        return self

    async def __anext__(self) -> StatusUpdate:
        while not self._pending:
            if self._done or self._sub is None:
                self.close()
                raise StopAsyncIteration
            await self._wait()
        return self._pending.popleft()

    async def _wait(self) -> None:
        assert self._sub is not None
        event: StateEvent | None = None
        with trio.move_on_after(self.resync_seconds):
            event = await self._sub.receive.receive()
        if event is None or self._sub.overflowed:
            self._sub.overflowed = False
            await self._resync()
            return
        if not self._apply(event):
            await self._resync()

    def _apply(self, event: StateEvent) -> bool:
        """Emit the change `event` announces; False when it does not follow what is known."""
        if event.step_uuid is None:
            if event.from_state != self._task_state:
                return event.to_state == self._task_state  # a stale repeat: nothing to do
            self._task_changed(event.to_state)
            return True
        known = self._steps.get(event.step_uuid)
        if known is None or known[1] != event.from_state:
            return known is not None and known[1] == event.to_state
        self._step_changed(event.step_uuid, known[0], known[1], event.to_state)
        return True

    async def _resync(self) -> None:
        self.resyncs += 1
        snap = await self.ctx.db.run(read_snapshot, self.task_uuid)
        first = self._task_state is None
        for step_uuid, (name, state) in snap.steps.items():
            known = self._steps.get(step_uuid)
            if known is None or known[1] != state:
                self._step_changed(step_uuid, name, known[1] if known else None, state,
                                   emit=not first)
        if first:
            self._task_changed(snap.task_state, initial=True)
            if self.include_steps:
                for step_uuid, (name, state) in sorted(snap.steps.items(),
                                                       key=lambda kv: kv[1][0]):
                    self._pending.append(self._step_update(step_uuid, name, None, state))
            self._finish_if_terminal()
        elif snap.task_state != self._task_state:
            self._task_changed(snap.task_state)

    def _task_changed(self, state: str, *, initial: bool = False) -> None:
        previous = None if initial else self._task_state
        self._task_state = state
        now = datetime.now(UTC)
        self._pending.append(StatusUpdate(
            update_type=UpdateType.TASK_STATE_CHANGE, task_uuid=self.task_uuid,
            task_state=TaskState(state),
            previous_task_state=TaskState(previous) if previous else None, timestamp=now,
            message="current state" if initial else f"{previous} -> {state}"))
        if not initial:
            self._finish_if_terminal()

    def _finish_if_terminal(self) -> None:
        """Once settled: the closing TASK_COMPLETE / TASK_ERROR update, then end."""
        assert self._task_state is not None
        state = TaskState(self._task_state)
        final = _FINAL.get(state)
        if final is not None and state in TASK_SETTLED and not self._done:
            self._pending.append(StatusUpdate(
                update_type=final, task_uuid=self.task_uuid, task_state=state,
                timestamp=datetime.now(UTC), message=f"task is {state.value}"))
            self._done = True

    def _step_changed(self, step_uuid: UUID, name: str, previous: str | None, state: str,
                      *, emit: bool = True) -> None:
        self._steps[step_uuid] = (name, state)
        if emit and self.include_steps and not self._done:
            self._pending.append(self._step_update(step_uuid, name, previous, state))

    def _step_update(self, step_uuid: UUID, name: str, previous: str | None, state: str
                     ) -> StatusUpdate:
        return StatusUpdate(
            update_type=UpdateType.STEP_STATE_CHANGE, task_uuid=self.task_uuid,
            step_uuid=step_uuid, step_name=name, step_state=StepState(state),
            previous_step_state=StepState(previous) if previous else None,
            timestamp=datetime.now(UTC),
            message=f"{name}: {previous} -> {state}" if previous else f"{name}: {state}")


async def open_watch(ctx: GatewayContext, task_uuid: UUID, *, include_steps: bool
                     ) -> TaskWatch:
    watch = TaskWatch(ctx, task_uuid, include_steps=include_steps)
    await watch.start()
    return watch
