"""Analytics: performance metrics over a window, bottleneck analysis, system health counts,
and a small time-to-live cache for the API edge (SPEC §7.1).

The query functions are plain functions on a connection (run them through `Database.run`).
Rates are percentages (0..100); `system_health_score` and `database_pool_utilization` are
fractions (0..1); durations are seconds; timestamps are timezone-aware datetimes.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, TypeVar

from tasker_shared.db.database import Conn
from tasker_shared.errors import ValidationError

T = TypeVar("T")

STEP_ERROR_RATE_ALERT = 20.0  # percent
POOL_UTILIZATION_ALERT = 0.8  # fraction
SLOW_STEP_ALERT_SECONDS = 30.0


def _hours_ago(hours: float) -> str:
    return f"{float(hours) * 3600.0} seconds"


def system_health_counts(conn: Conn) -> dict[str, int]:
    """Tasks per task state (12) + total, steps per step state (10) + total."""
    row = conn.execute("SELECT * FROM tasker.get_system_health_counts_v1()").fetchone()
    assert row is not None
    return {key: int(value) for key, value in row.items()}


def performance_metrics(conn: Conn, *, hours: float) -> dict[str, Any]:
    """PerformanceMetrics over the last `hours` (tasks created and step results recorded)."""
    if not hours > 0:
        raise ValidationError(f"hours must be positive, got {hours}")
    row = conn.execute(
        "SELECT * FROM tasker.get_analytics_metrics_v1(now() - %s::interval)",
        (_hours_ago(hours),),
    ).fetchone()
    assert row is not None
    return {
        "total_tasks": int(row["task_throughput"]),
        "active_tasks": int(row["active_tasks_count"]),
        "completed_tasks": int(row["completion_count"]),
        "failed_tasks": int(row["error_count"]),
        "completion_rate": float(row["completion_rate"]),
        "error_rate": float(row["error_rate"]),
        "average_task_duration_seconds": float(row["avg_task_duration"]),
        "average_step_duration_seconds": float(row["avg_step_duration"]),
        "tasks_per_hour": round(int(row["task_throughput"]) / hours, 3),
        "steps_per_hour": round(int(row["step_throughput"]) / hours, 3),
        "system_health_score": float(row["system_health_score"]),
        "analysis_period_start": row["analysis_period_start"],
        "calculated_at": row["calculated_at"],
    }


def _floats(row: dict[str, Any], *keys: str) -> dict[str, Any]:
    out = dict(row)
    for key in keys:
        out[key] = float(out[key]) if out[key] is not None else 0.0
    return out


def slowest_steps(conn: Conn, *, hours: float, limit: int,
                  min_executions: int) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT * FROM tasker.get_slowest_steps_aggregated_v1(now() - %s::interval,"
        " %s::int, %s::int)",
        (_hours_ago(hours), limit, min_executions),
    ).fetchall()
    return [_floats(r, "average_duration_seconds", "max_duration_seconds", "error_rate")
            for r in rows]


def slowest_tasks(conn: Conn, *, hours: float, limit: int,
                  min_executions: int) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT * FROM tasker.get_slowest_tasks_aggregated_v1(now() - %s::interval,"
        " %s::int, %s::int)",
        (_hours_ago(hours), limit, min_executions),
    ).fetchall()
    return [_floats(r, "average_duration_seconds", "max_duration_seconds",
                    "average_step_count", "error_rate") for r in rows]


def server_connection_utilization(conn: Conn) -> float:
    """Connections to this database as a fraction of the server's max_connections."""
    row = conn.execute(
        "SELECT count(*)::float8 / current_setting('max_connections')::float8 AS u"
        " FROM pg_stat_activity WHERE datname = current_database()").fetchone()
    return round(float(row["u"]), 4) if row else 0.0


def recommendations(slow_steps: list[dict[str, Any]], pool_utilization: float) -> list[str]:
    """Advice: a high step error rate, pool pressure, a slow step."""
    advice: list[str] = []
    if slow_steps:
        worst = max(slow_steps, key=lambda s: s["error_rate"])
        if worst["error_rate"] > STEP_ERROR_RATE_ALERT:
            advice.append(
                f"Step '{worst['step_name']}' of {worst['namespace_name']}/{worst['task_name']}"
                f" v{worst['version']} fails {worst['error_rate']:.1f}% of the time; review its"
                " handler's errors and retry policy.")
    if pool_utilization > POOL_UTILIZATION_ALERT:
        advice.append(
            f"Database pool utilisation is {pool_utilization:.0%}; raise database.pool_max or"
            " add replicas of the busiest service.")
    if slow_steps and slow_steps[0]["average_duration_seconds"] > SLOW_STEP_ALERT_SECONDS:
        slowest = slow_steps[0]
        advice.append(
            f"Step '{slowest['step_name']}' of {slowest['namespace_name']}/"
            f"{slowest['task_name']} averages {slowest['average_duration_seconds']:.1f}s;"
            " consider splitting it, batching it or raising worker concurrency.")
    return advice


def bottleneck_analysis(
    conn: Conn, *, limit: int, min_executions: int, pool_utilization: float | None = None,
    hours: float = 24.0,
) -> dict[str, Any]:
    """BottleneckAnalysis over the last `hours` (default 24). `pool_utilization` is the
    caller's pool usage (0..1); without it the server-side connection share is used."""
    if limit < 1 or limit > 1000:
        raise ValidationError(f"limit must be between 1 and 1000, got {limit}")
    if min_executions < 0:
        raise ValidationError(f"min_executions must not be negative, got {min_executions}")
    if not hours > 0:
        raise ValidationError(f"hours must be positive, got {hours}")
    steps = slowest_steps(conn, hours=hours, limit=limit, min_executions=min_executions)
    tasks = slowest_tasks(conn, hours=hours, limit=limit, min_executions=min_executions)
    usage = (server_connection_utilization(conn) if pool_utilization is None
             else float(pool_utilization))
    return {
        "slow_steps": steps,
        "slow_tasks": tasks,
        "resource_utilization": {"database_pool_utilization": usage,
                                 "system_health": system_health_counts(conn)},
        "recommendations": recommendations(steps, usage),
    }


class AnalyticsCache:
    """Cache-aside for analytics results, `ttl_seconds` per key (0 disables caching)."""

    def __init__(self, ttl_seconds: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_seconds = ttl_seconds
        self._clock = clock
        self._entries: dict[Hashable, tuple[float, Any]] = {}
        self.hits = 0
        self.misses = 0

    async def get(self, key: Hashable, compute: Callable[[], Awaitable[T]]) -> T:
        """The cached value for `key`, or `await compute()` (stored when caching is on)."""
        now = self._clock()
        found = self._entries.get(key)
        if found is not None and found[0] > now:
            self.hits += 1
            value: T = found[1]
            return value
        self.misses += 1
        result = await compute()
        if self.ttl_seconds > 0:
            self._entries[key] = (self._clock() + self.ttl_seconds, result)
            if len(self._entries) > 256:
                self._evict(now)
        return result

    def _evict(self, now: float) -> None:
        for stale in [k for k, (exp, _) in self._entries.items() if exp <= now]:
            del self._entries[stale]
        while len(self._entries) > 256:
            del self._entries[next(iter(self._entries))]

    def clear(self) -> None:
        self._entries.clear()
