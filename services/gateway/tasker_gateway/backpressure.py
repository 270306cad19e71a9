"""Backpressure for task creation (SPEC 8.5), from state cached by a background loop.

The loop reads the queue depths every `backpressure_refresh_seconds`; the request path only
looks at the cached `status`, never queries. The database part of the verdict (breaker open,
refreshes failing) is re-read on every check, so creation is accepted again as soon as the
breaker closes, not one refresh later; and a client refused for a database outage is asked
back after `DATABASE_RETRY_AFTER` seconds, the recovery target (the breaker probes the
database every `probe_interval_seconds`), not SPEC 8.5's 30 s: a two-second blip must not
cost clients half a minute.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog
import trio

from tasker_gateway.errors import Backpressure
from tasker_shared.db.database import Database
from tasker_shared.queue.pgmq import queue_depths
from tasker_shared.runtime.circuit import CircuitState
from tasker_shared.runtime.metrics import QUEUE_DEPTH, QUEUE_OLDEST_AGE
from tasker_shared.runtime.settings import GatewaySettings

log = structlog.get_logger("tasker.gateway.backpressure")

DATABASE_RETRY_AFTER = 5
OVERFLOW_RETRY_AFTER = 60
CRITICAL_RETRY_AFTER = 30
DATABASE_FAILURE_THRESHOLD = 3  # consecutive failed refreshes before the database counts as down
WARNING_FRACTION = 0.8


@dataclass(frozen=True, kw_only=True, slots=True)
class QueueDepth:
    queue_name: str
    depth: int  # visible messages waiting
    total: int  # including in-flight and delayed ones
    oldest_age_seconds: float
    tier: str  # normal / warning / critical / overflow


@dataclass(frozen=True, kw_only=True, slots=True)
class BackpressureStatus:
    active: bool
    reason: str
    retry_after_seconds: int
    queue_name: str | None
    queue_depth: int
    queue_depth_tier: str
    database_ok: bool
    evaluated_at: datetime | None


INITIAL = BackpressureStatus(active=False, reason="", retry_after_seconds=0, queue_name=None,
                             queue_depth=0, queue_depth_tier="normal", database_ok=True,
                             evaluated_at=None)


def tier(depth: int, *, critical: int, overflow: int) -> str:
    if depth >= overflow:
        return "overflow"
    if depth >= critical:
        return "critical"
    if depth >= critical * WARNING_FRACTION:
        return "warning"
    return "normal"


class BackpressureMonitor:
    """Caches the queue depths and the verdict derived from them."""

    def __init__(self, *, db: Database, settings: GatewaySettings,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.db = db
        self.settings = settings
        self._clock = clock
        self.status = INITIAL
        self.depths: dict[str, QueueDepth] = {}
        self.consecutive_failures = 0
        self.refreshes = 0
        self.rejections = 0

    async def run(self) -> None:
        """Refresh forever (a Runtime background loop)."""
        while True:
            await self.refresh()
            await trio.sleep(self.settings.backpressure_refresh_seconds)

    async def refresh(self) -> None:
        try:
            with trio.fail_after(max(2.0, 2 * self.settings.backpressure_refresh_seconds)):
                raw = await self.db.run(queue_depths)
        except Exception as exc:
            self.record_failure(str(exc) or exc.__class__.__name__)
            return
        self.record_depths(raw)

    def record_failure(self, error: str) -> None:
        self.consecutive_failures += 1
        if self.consecutive_failures == DATABASE_FAILURE_THRESHOLD:
            log.warning("backpressure_database_down", action="backpressure", error=error)
        self.status = self._verdict(self.depths)

    def record_depths(self, raw: dict[str, tuple[int, int, float]]) -> None:
        self.refreshes += 1
        self.consecutive_failures = 0
        critical, overflow = self.settings.queue_depth_critical, self.settings.queue_depth_overflow
        self.depths = {
            name: QueueDepth(queue_name=name, depth=int(visible), total=int(total),
                             oldest_age_seconds=float(age),
                             tier=tier(int(visible), critical=critical, overflow=overflow))
            for name, (total, visible, age) in raw.items()
        }
        for name, q in self.depths.items():
            QUEUE_DEPTH.labels(name).set(q.total)
            QUEUE_OLDEST_AGE.labels(name).set(q.oldest_age_seconds)
        before = self.status.active
        self.status = self._verdict(self.depths)
        if self.status.active != before:
            log.warning("backpressure_changed", action="backpressure", active=self.status.active,
                        reason=self.status.reason, queue=self.status.queue_name)

    def _verdict(self, depths: dict[str, QueueDepth]) -> BackpressureStatus:
        deepest = max((q for q in depths.values() if q.depth > 0), key=lambda q: q.depth,
                      default=None)
        name = deepest.queue_name if deepest else None
        depth = deepest.depth if deepest else 0
        level = deepest.tier if deepest else "normal"
        database_ok = (self.consecutive_failures < DATABASE_FAILURE_THRESHOLD
                       and not self.breaker_open())
        if not database_ok:
            active, reason, retry = True, "database unavailable", DATABASE_RETRY_AFTER
        elif level == "overflow":
            active, reason = True, f"queue {name} overflowing ({depth} messages waiting)"
            retry = OVERFLOW_RETRY_AFTER
        elif level == "critical":
            active, reason = True, f"queue {name} critically deep ({depth} messages waiting)"
            retry = CRITICAL_RETRY_AFTER
        else:
            active, reason, retry = False, "", 0
        return BackpressureStatus(active=active, reason=reason, retry_after_seconds=retry,
                                  queue_name=name, queue_depth=depth, queue_depth_tier=level,
                                  database_ok=database_ok, evaluated_at=self._clock())

    def breaker_open(self) -> bool:
        """True while the database circuit breaker refuses calls (SPEC 8.5, first rule)."""
        breaker = self.db.breaker
        return breaker is not None and breaker.state is CircuitState.OPEN

    def check(self) -> None:
        """Raise Backpressure while the cached status says new work must wait."""
        status = self.status
        if self.breaker_open() or not status.database_ok:  # the breaker may have moved
            status = self.status = self._verdict(self.depths)
        if status.active:
            self.rejections += 1
            raise Backpressure(f"not accepting new tasks: {status.reason}; retry after"
                               f" {status.retry_after_seconds}s",
                               retry_after=status.retry_after_seconds)
