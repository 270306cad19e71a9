"""The staleness detector (SPEC §6.5): every `detection_interval_seconds`, tasks stuck in a
waiting or in-process state past their threshold (or older than their maximum lifetime) get
a DLQ entry and move to error; active states stuck too long are reported. Replicas never
take the same task (SKIP LOCKED in `tasker.detect_and_transition_stale_tasks_v1`)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

import structlog
import trio

from tasker_shared.db.database import Conn, Database
from tasker_shared.runtime.metrics import DLQ_ENTRIES, STUCK_TASKS, TASKS_FINISHED, TRANSITIONS
from tasker_shared.runtime.settings import StalenessSettings
from tasker_shared.runtime.tracing import span

log = structlog.get_logger("tasker.staleness")

STUCK_LOG_SAMPLE = 10  # stuck tasks named in the log line of a pass (oldest first)

_DETECT = (
    "SELECT * FROM tasker.detect_and_transition_stale_tasks_v1("
    "%(dry)s::boolean, %(batch)s::int, %(deps)s::numeric, %(retry)s::numeric,"
    " %(proc)s::numeric, %(life)s::numeric, %(processor)s::uuid, %(error)s::boolean,"
    " %(dlq)s::boolean, COALESCE(%(now)s::timestamptz, now()))"
)
_STUCK = ("SELECT * FROM tasker.find_stuck_tasks_v1(%s::numeric,"
          " COALESCE(%s::timestamptz, now()))")


@dataclass(frozen=True, kw_only=True, slots=True)
class StalenessPass:
    """What one detector pass found and did."""

    actions: list[dict[str, Any]]
    stuck: list[dict[str, Any]]
    dry_run: bool

    @property
    def counts(self) -> dict[str, int]:
        return dict(Counter(str(a["action_taken"]) for a in self.actions))


@dataclass(kw_only=True, slots=True)
class StalenessStatistics:
    passes: int = 0
    last_pass_at: float | None = None
    actions: Counter[str] = field(default_factory=Counter)
    stuck_reported: int = 0


def detect_stale_tasks(
    conn: Conn, settings: StalenessSettings, *, processor: UUID | None,
    now: datetime | None = None,
) -> StalenessPass:
    """One pass in one transaction: act on stale tasks, list stuck active ones."""
    actions = conn.execute(_DETECT, {
        "dry": settings.dry_run, "batch": settings.batch_size,
        "deps": settings.waiting_for_dependencies_minutes,
        "retry": settings.waiting_for_retry_minutes,
        "proc": settings.steps_in_process_minutes,
        "life": settings.task_max_lifetime_hours, "processor": processor,
        "error": settings.auto_transition_to_error, "dlq": settings.auto_move_to_dlq,
        "now": now,
    }).fetchall()
    stuck = conn.execute(_STUCK, (settings.stuck_active_minutes, now)).fetchall()
    return StalenessPass(actions=actions, stuck=stuck, dry_run=settings.dry_run)


class StalenessDetector:
    """Runs `detect_stale_tasks` on a timer and records what it did (logs, metrics)."""

    def __init__(self, *, db: Database, settings: StalenessSettings,
                 processor_uuid: UUID | None) -> None:
        self.db = db
        self.settings = settings
        self.processor_uuid = processor_uuid
        self.stats = StalenessStatistics()

    async def run(self) -> None:
        """Forever: wait one interval, run one pass (a failed pass is logged, not fatal)."""
        if not self.settings.enabled:
            return
        while True:
            await trio.sleep(self.settings.detection_interval_seconds)
            try:
                await self.run_once()
            except Exception as exc:  # a failed pass is retried next interval
                log.warning("staleness_pass_failed", action="detect", error=str(exc))

    async def run_once(self, *, now: datetime | None = None) -> StalenessPass:
        with span("finalizer.staleness_pass",
                  attributes={"tasker.dry_run": self.settings.dry_run}):
            result = await self.db.run(detect_stale_tasks, self.settings,
                                       processor=self.processor_uuid, now=now)
        self.record(result)
        return result

    def record(self, result: StalenessPass) -> None:
        self.stats.passes += 1
        self.stats.last_pass_at = trio.current_time()
        for row in result.actions:
            action = str(row["action_taken"])
            self.stats.actions[action] += 1
            if row["dlq_entry_uuid"] is not None:
                DLQ_ENTRIES.labels("staleness_timeout").inc()
            if action in ("transitioned_to_dlq_and_error", "transitioned_to_error_only"):
                TASKS_FINISHED.labels("error").inc()
                TRANSITIONS.labels("task", "error").inc()
            log.warning("stale_task", action=action, task_uuid=str(row["task_uuid"]),
                        namespace=row["namespace_name"], task_name=row["task_name"],
                        state=row["current_state"], reason=row["stale_reason"],
                        minutes_in_state=float(row["time_in_state_minutes"]),
                        threshold_minutes=float(row["threshold_minutes"]),
                        dry_run=result.dry_run)
        by_state = Counter(str(r["current_state"]) for r in result.stuck)
        for state in ("initializing", "enqueuing_steps", "steps_in_process",
                      "evaluating_results"):
            STUCK_TASKS.labels(state).set(by_state.get(state, 0))
        self.stats.stuck_reported += len(result.stuck)
        if result.stuck:  # one line per pass, however many there are
            log.warning("stuck_tasks", action="report", count=len(result.stuck),
                        by_state=dict(by_state),
                        oldest=[{"task_uuid": str(r["task_uuid"]), "state": r["current_state"],
                                 "namespace": r["namespace_name"], "task_name": r["task_name"],
                                 "minutes_in_state": float(r["minutes_in_state"])}
                                for r in result.stuck[:STUCK_LOG_SAMPLE]])
        if result.actions:
            log.info("staleness_pass", action="detect", dry_run=result.dry_run,
                     **result.counts)

    def statistics(self) -> dict[str, Any]:
        return {"enabled": self.settings.enabled, "dry_run": self.settings.dry_run,
                "passes": self.stats.passes, "actions": dict(self.stats.actions),
                "stuck_reported": self.stats.stuck_reported}
