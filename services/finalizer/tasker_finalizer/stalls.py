"""Checkpoint stall detection (SPEC §5.2): batch workers in progress whose last checkpoint
(or attempt start) is older than `batches.checkpoint_stall_minutes` are reported — a
warning log per newly stalled step, a gauge and a counter, and the finalizer's details."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import structlog
import trio
from prometheus_client import Counter, Gauge

from tasker_shared.db.database import Conn, Database
from tasker_shared.runtime.metrics import REGISTRY
from tasker_shared.runtime.service import Runtime
from tasker_shared.runtime.settings import BatchSettings

log = structlog.get_logger("tasker.stalls")

STALLED_STEPS = Gauge(
    "tasker_batch_checkpoint_stalled_steps",
    "Batch worker steps in progress without checkpoint progress for the stall threshold",
    registry=REGISTRY,
)
STALLS_DETECTED = Counter(
    "tasker_batch_checkpoint_stalls_total", "Checkpoint stalls detected (once per stall)",
    registry=REGISTRY,
)

_FIND = "SELECT * FROM tasker.find_stalled_checkpoints_v1(%s::numeric, %s::int, %s::timestamptz)"


@dataclass(frozen=True, kw_only=True, slots=True)
class StalledStep:
    """One batch worker that stopped making progress."""

    step_uuid: UUID
    task_uuid: UUID
    step_name: str
    attempts: int
    cursor: Any
    items_processed: int | None
    last_progress_at: datetime
    stalled_seconds: float

    @property
    def key(self) -> tuple[UUID, int, datetime]:
        """Identity of the stall: new progress or a new attempt makes a new one."""
        return (self.step_uuid, self.attempts, self.last_progress_at)


def find_stalled_checkpoints(conn: Conn, *, stall_minutes: float, limit: int = 100,
                             now: datetime | None = None) -> list[StalledStep]:
    """Batch worker steps with no progress for `stall_minutes`, oldest first."""
    rows = conn.execute(_FIND, (stall_minutes * 60.0, limit, now)).fetchall()
    return [StalledStep(**row) for row in rows]


@dataclass(frozen=True, kw_only=True, slots=True)
class StallStatistics:
    passes: int
    stalled_now: int
    stalls_detected: int


class CheckpointStallMonitor:
    """Scans for stalled batch workers every `stall_check_interval_seconds`."""

    def __init__(self, *, db: Database, settings: BatchSettings) -> None:
        self.db = db
        self.settings = settings
        self.passes = 0
        self.detected = 0
        self.current: list[StalledStep] = []
        self._reported: set[tuple[UUID, int, datetime]] = set()

    def statistics(self) -> StallStatistics:
        return StallStatistics(passes=self.passes, stalled_now=len(self.current),
                               stalls_detected=self.detected)

    async def scan(self) -> list[StalledStep]:
        """One pass: find stalled steps, report the new ones."""
        stalled = await self.db.run(find_stalled_checkpoints,
                                    stall_minutes=self.settings.checkpoint_stall_minutes)
        self.passes += 1
        keys = {step.key for step in stalled}
        for step in stalled:
            if step.key in self._reported:
                continue
            self.detected += 1
            STALLS_DETECTED.inc()
            log.warning("checkpoint_stalled", action="report", step_uuid=str(step.step_uuid),
                        task_uuid=str(step.task_uuid), step_name=step.step_name,
                        attempts=step.attempts, cursor=step.cursor,
                        items_processed=step.items_processed,
                        stalled_seconds=round(step.stalled_seconds, 1))
        self._reported = keys
        self.current = stalled
        STALLED_STEPS.set(len(stalled))
        return stalled

    async def run(self) -> None:
        while True:
            await trio.sleep(self.settings.stall_check_interval_seconds)
            try:
                await self.scan()
            except Exception as exc:
                log.warning("checkpoint_stall_scan_failed", error=str(exc))


async def watch_checkpoint_stalls(rt: Runtime) -> None:
    """The finalizer's background task: run the monitor and show it in /health/detailed."""
    monitor = CheckpointStallMonitor(db=rt.db, settings=rt.settings.batches)
    rt.extra_details.append(lambda: {"checkpoint_stalls": {
        **asdict(monitor.statistics()),
        "stalled": [{"step_uuid": str(s.step_uuid), "step_name": s.step_name,
                     "task_uuid": str(s.task_uuid), "cursor": s.cursor,
                     "stalled_seconds": round(s.stalled_seconds, 1)} for s in monitor.current],
    }})
    await monitor.run()
