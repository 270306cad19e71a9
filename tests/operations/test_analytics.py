"""Analytics figures checked against a known set of finished tasks and step results."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import pytest
import trio
from psycopg.types.json import Jsonb

from tasker_shared.errors import ValidationError
from tasker_shared.store import analytics
from tests.operations.ops_support import Conn, make_task, make_template, put_in_state


def _finish(conn: Conn, task: UUID, state: str, *, created_min_ago: float,
            duration_s: float | None) -> None:
    put_in_state(conn, task, state, minutes_ago=created_min_ago)
    conn.execute(
        "UPDATE tasker.tasks SET created_at = now() - %s * interval '1 minute',"
        " completed_at = CASE WHEN %s::float8 IS NULL THEN NULL ELSE now()"
        " - %s * interval '1 minute' + %s::float8 * interval '1 second' END"
        " WHERE task_uuid = %s",
        (created_min_ago, duration_s, created_min_ago, duration_s, task))


def _result(conn: Conn, task: UUID, step: str, *, ms: int, success: bool,
            minutes_ago: float) -> None:
    row = conn.execute(
        "SELECT ws.workflow_step_uuid FROM tasker.workflow_steps ws JOIN tasker.named_steps ns"
        " ON ns.named_step_uuid = ws.named_step_uuid WHERE ws.task_uuid = %s AND ns.name = %s",
        (task, step)).fetchone()
    assert row is not None
    ws = row["workflow_step_uuid"]
    conn.execute("UPDATE tasker.workflow_steps SET results = %s WHERE workflow_step_uuid = %s",
                 (Jsonb({"success": success, "metadata": {"execution_time_ms": ms}}), ws))
    to = "enqueued_for_orchestration" if success else "enqueued_as_error_for_orchestration"
    conn.execute("SELECT tasker._append_step_transition_v1(%s, 'in_progress', %s, 'x', '{}')",
                 (ws, to))
    conn.execute("UPDATE tasker.workflow_step_result_audit"
                 " SET recorded_at = now() - %s * interval '1 minute'"
                 " WHERE workflow_step_uuid = %s AND recorded_at > now() - interval '1 second'",
                 (minutes_ago, ws))


@pytest.fixture
def known(conn: Conn) -> dict[str, Any]:
    """A: 3 complete (10/20/30 s), 1 error (5 s), all 40 min old, plus 1 complete 3 h old
    (60 s); B: 1 task waiting, 10 min old. Step results as in each assertion below."""
    a = make_template(conn, "report_flow", namespace="metrics", steps=2)
    b = make_template(conn, "export_flow", namespace="metrics")
    tasks = {name: make_task(conn, a, "report_flow", steps=2) for name in
             ("a1", "a2", "a3", "a4", "a5")}
    tasks["b1"] = make_task(conn, b, "export_flow")
    for name, duration in (("a1", 10), ("a2", 20), ("a3", 30)):
        _finish(conn, tasks[name], "complete", created_min_ago=40, duration_s=duration)
    _finish(conn, tasks["a4"], "error", created_min_ago=40, duration_s=5)
    _finish(conn, tasks["a5"], "complete", created_min_ago=180, duration_s=60)
    _finish(conn, tasks["b1"], "waiting_for_dependencies", created_min_ago=10, duration_s=None)
    for name in ("a1", "a2", "a3", "a4"):
        _result(conn, tasks[name], "report_flow_s1", ms=1000, success=True, minutes_ago=30)
    for name in ("a1", "a2", "a3"):
        _result(conn, tasks[name], "report_flow_s2", ms=3000, success=True, minutes_ago=30)
    for _ in range(2):
        _result(conn, tasks["a4"], "report_flow_s2", ms=5000, success=False, minutes_ago=30)
    _result(conn, tasks["b1"], "export_flow_s1", ms=60_000, success=True, minutes_ago=5)
    _result(conn, tasks["a5"], "report_flow_s1", ms=100_000, success=True, minutes_ago=170)
    return tasks


def test_performance_metrics_last_hour(conn: Conn, known: dict[str, Any]) -> None:
    m = analytics.performance_metrics(conn, hours=1)
    assert m["total_tasks"] == 5
    assert m["active_tasks"] == 1
    assert m["completed_tasks"] == 3
    assert m["failed_tasks"] == 1
    assert m["completion_rate"] == 60.0
    assert m["error_rate"] == 20.0
    assert m["average_task_duration_seconds"] == pytest.approx(20.0)
    # 10 results: 4 x 1 s, 3 x 3 s, 2 x 5 s, 1 x 60 s.
    assert m["average_step_duration_seconds"] == pytest.approx(8.3)
    assert m["tasks_per_hour"] == 5.0
    assert m["steps_per_hour"] == 10.0
    assert m["system_health_score"] == 0.75
    assert (m["calculated_at"] - m["analysis_period_start"]).total_seconds() == 3600
    assert set(m) == {
        "total_tasks", "active_tasks", "completed_tasks", "failed_tasks", "completion_rate",
        "error_rate", "average_task_duration_seconds", "average_step_duration_seconds",
        "tasks_per_hour", "steps_per_hour", "system_health_score", "analysis_period_start",
        "calculated_at"}


def test_performance_metrics_longer_window(conn: Conn, known: dict[str, Any]) -> None:
    m = analytics.performance_metrics(conn, hours=4)
    assert (m["total_tasks"], m["completed_tasks"], m["failed_tasks"]) == (6, 4, 1)
    assert m["average_task_duration_seconds"] == pytest.approx(30.0)  # 10, 20, 30, 60
    assert m["tasks_per_hour"] == 1.5
    assert m["steps_per_hour"] == 2.75  # 11 results / 4 h
    assert m["system_health_score"] == 0.8


def test_performance_metrics_empty_and_invalid(conn: Conn) -> None:
    m = analytics.performance_metrics(conn, hours=24)
    assert (m["total_tasks"], m["completion_rate"], m["system_health_score"]) == (0, 0.0, 1.0)
    with pytest.raises(ValidationError):
        analytics.performance_metrics(conn, hours=0)


def test_bottleneck_analysis(conn: Conn, known: dict[str, Any]) -> None:
    b = analytics.bottleneck_analysis(conn, limit=10, min_executions=1, pool_utilization=0.9,
                                      hours=1)
    steps = [(s["step_name"], s["average_duration_seconds"], s["max_duration_seconds"],
              s["execution_count"], s["error_count"], s["error_rate"]) for s in b["slow_steps"]]
    assert steps == [("export_flow_s1", 60.0, 60.0, 1, 0, 0.0),
                     ("report_flow_s2", 3.8, 5.0, 5, 2, 40.0),
                     ("report_flow_s1", 1.0, 1.0, 4, 0, 0.0)]
    first = b["slow_steps"][1]
    assert (first["namespace_name"], first["task_name"], first["version"]) == (
        "metrics", "report_flow", "1.0.0")
    assert first["last_executed_at"] is not None
    [task] = b["slow_tasks"]
    assert (task["task_name"], task["execution_count"], task["error_count"]) == (
        "report_flow", 4, 1)
    assert task["average_duration_seconds"] == pytest.approx(16.25)
    assert task["max_duration_seconds"] == 30.0
    assert task["average_step_count"] == 2.0
    assert task["error_rate"] == 25.0
    usage = b["resource_utilization"]
    assert usage["database_pool_utilization"] == 0.9
    health = usage["system_health"]
    assert len(health) == 24
    assert (health["complete_tasks"], health["error_tasks"],
            health["waiting_for_dependencies_tasks"], health["total_tasks"]) == (4, 1, 1, 6)
    assert health["total_steps"] == 11
    advice = b["recommendations"]
    assert len(advice) == 3
    assert "report_flow_s2" in advice[0] and "40.0%" in advice[0]
    assert "90%" in advice[1]
    assert "export_flow_s1" in advice[2] and "60.0s" in advice[2]


def test_bottleneck_min_executions_and_limits(conn: Conn, known: dict[str, Any]) -> None:
    b = analytics.bottleneck_analysis(conn, limit=10, min_executions=5, pool_utilization=0.1)
    # 24 h window: the 3 h old result counts too (report_flow_s1: 5 runs, avg 20.8 s).
    assert [(s["step_name"], s["average_duration_seconds"]) for s in b["slow_steps"]] == [
        ("report_flow_s1", 20.8), ("report_flow_s2", 3.8)]
    assert [(t["task_name"], t["execution_count"], t["average_duration_seconds"])
            for t in b["slow_tasks"]] == [("report_flow", 5, 25.0)]  # 10, 20, 30, 5, 60
    assert len(b["recommendations"]) == 1  # the 40% error rate; 20.8 s is not > 30 s
    b2 = analytics.bottleneck_analysis(conn, limit=1, min_executions=1)
    assert len(b2["slow_steps"]) == 1 and len(b2["slow_tasks"]) == 1
    assert 0.0 < b2["resource_utilization"]["database_pool_utilization"] < 1.0
    for bad in ({"limit": 0, "min_executions": 1}, {"limit": 5, "min_executions": -1}):
        with pytest.raises(ValidationError):
            analytics.bottleneck_analysis(conn, **bad)
    with pytest.raises(ValidationError):
        analytics.bottleneck_analysis(conn, limit=5, min_executions=1, hours=-1)


def test_no_recommendations_when_all_is_well() -> None:
    steps = [{"step_name": "s", "namespace_name": "n", "task_name": "t", "version": "1",
              "error_rate": 5.0, "average_duration_seconds": 2.0}]
    assert analytics.recommendations(steps, 0.5) == []
    assert analytics.recommendations([], 0.5) == []


async def test_analytics_cache_honours_ttl() -> None:
    now = [100.0]
    cache = analytics.AnalyticsCache(60, clock=lambda: now[0])
    calls: list[int] = []

    async def compute() -> int:
        calls.append(1)
        await trio.lowlevel.checkpoint()
        return len(calls)

    assert await cache.get(("perf", 24), compute) == 1
    assert await cache.get(("perf", 24), compute) == 1
    assert await cache.get(("perf", 1), compute) == 2
    now[0] += 61
    assert await cache.get(("perf", 24), compute) == 3
    assert (cache.hits, cache.misses) == (1, 3)
    off = analytics.AnalyticsCache(0, clock=lambda: now[0])
    assert await off.get("k", compute) == 4
    assert await off.get("k", compute) == 5
    for i in range(300):
        await cache.get(i, compute)
    assert len(cache._entries) <= 256
    cache.clear()
    assert cache._entries == {}
