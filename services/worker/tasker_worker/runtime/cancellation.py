"""Cancelling running handlers whose step this run no longer owns (task cancelled, step
resolved, or re-claimed by a later attempt): a watcher reads the states of the running
steps and cancels the runs that lost theirs."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from uuid import UUID

import structlog
import trio

from tasker_shared.db.database import Conn, Database
from tasker_worker.sdk.cancellation import CancelToken

log = structlog.get_logger("tasker.worker")

# How often the states of running steps are read (one query for all of them, only while
# some run): the longest a cancelled task's handler keeps running before it is told.
CHECK_SECONDS = 1.0


@dataclass(eq=False, slots=True)
class RunControl:
    """One handler run: the Trio scope it runs in and the token its context carries."""

    token: CancelToken = field(default_factory=CancelToken)
    scope: trio.CancelScope = field(default_factory=trio.CancelScope)
    timed_out: bool = False
    stopped: bool = False  # `cancel` was called (the first call wins)
    limit_seconds: float | None = None

    def cancel(self, reason: str, *, timed_out: bool = False) -> None:
        """Tell the handler first (token: flag and callbacks), then cancel its scope: an
        async handler sees cancellation at its next await, a sync one's thread is abandoned
        (it can only stop by itself). The first call wins."""
        if self.stopped:
            return
        self.stopped = True
        self.timed_out = timed_out
        self.token.cancel(reason)
        self.scope.cancel()

    def expire_after(self, seconds: float) -> None:
        """The handler timeout, without a timer task of its own: the token reads as
        cancelled from the deadline on and the scope's deadline cancels the run at that
        same instant (`settle` then calls the token's callbacks and records the timeout)."""
        self.limit_seconds = seconds
        self.token.expire_at(time.perf_counter() + seconds)
        self.scope.deadline = trio.current_time() + seconds

    def settle(self) -> None:
        """After the run: a run that reached its deadline before anything else stopped it
        timed out."""
        if not self.stopped and self.limit_seconds is not None and self.token.cancelled:
            self.cancel(f"timed out after {self.limit_seconds:g}s", timed_out=True)


def lost_reason(attempt: int, state: str) -> str:
    """Why a run of `attempt` was cancelled when its step is now in `state`."""
    return f"the step is no longer in progress under attempt {attempt} (it is {state})"


def lost_steps(conn: Conn, runs: list[tuple[UUID, int]]) -> list[tuple[UUID, int, str]]:
    """Of the (step, attempt) runs given, those whose step is no longer `in_progress` under
    that attempt, with the step's state (`missing` for a deleted step)."""
    rows = conn.execute(
        "SELECT r.step_uuid, r.attempt, COALESCE(ws.current_state, 'missing') AS state"
        " FROM unnest(%s::uuid[], %s::int[]) AS r(step_uuid, attempt)"
        " LEFT JOIN tasker.workflow_steps ws ON ws.workflow_step_uuid = r.step_uuid"
        " WHERE ws.workflow_step_uuid IS NULL OR ws.current_state <> 'in_progress'"
        "    OR ws.attempts IS DISTINCT FROM r.attempt",
        ([step for step, _ in runs], [attempt for _, attempt in runs]),
    ).fetchall()
    return [(r["step_uuid"], r["attempt"], r["state"]) for r in rows]


class RunningSteps:
    """The handler runs in progress in this worker, by (step, attempt)."""

    def __init__(self, check_seconds: float = CHECK_SECONDS) -> None:
        self.check_seconds = check_seconds
        self.cancelled = 0
        self._runs: dict[tuple[UUID, int], RunControl] = {}

    def __len__(self) -> int:
        return len(self._runs)

    def add(self, step: UUID, attempt: int, control: RunControl) -> None:
        self._runs[(step, attempt)] = control

    def remove(self, step: UUID, attempt: int, control: RunControl) -> None:
        if self._runs.get((step, attempt)) is control:
            del self._runs[(step, attempt)]

    async def watch(self, db: Database) -> None:
        """Forever: every `check_seconds`, cancel the runs whose step was taken from them."""
        while True:
            await trio.sleep(self.check_seconds)
            if self._runs:
                await self.check(db)

    async def check(self, db: Database) -> int:
        """Read the running steps' states once and cancel the lost runs; how many."""
        try:
            lost = await db.run_autocommit(lost_steps, list(self._runs))
        except Exception as exc:
            log.warning("cancellation_check_failed", error=str(exc))
            return 0
        for step, attempt, state in lost:
            control = self._runs.get((step, attempt))
            if control is None:  # finished meanwhile
                continue
            reason = lost_reason(attempt, state)
            log.info("handler_cancelled", action="cancel", step_uuid=str(step), attempt=attempt,
                     state=state)
            self.cancelled += 1
            control.cancel(reason)
        return len(lost)
