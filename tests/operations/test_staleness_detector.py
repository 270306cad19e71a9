"""The staleness detector of the finalization service: one pass, the timed loop (autojump
clock), metrics, stuck-task reporting, and two finalizer replicas racing."""

from __future__ import annotations

import time
from typing import Any

import psycopg
import pytest
import trio
from psycopg.rows import dict_row

from tasker_finalizer.service import serve as serve_finalizer
from tasker_finalizer.staleness import StalenessDetector
from tasker_shared.db.database import Database
from tasker_shared.runtime.circuit import CircuitBreaker
from tasker_shared.runtime.metrics import REGISTRY
from tasker_shared.runtime.service import Runtime
from tasker_shared.runtime.settings import StalenessSettings
from tests.operations.ops_support import (
    Conn,
    dlq_rows,
    make_task,
    make_template,
    put_in_state,
)
from tests.support import service_settings


def _metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture
def template(conn: Conn) -> Any:
    return make_template(conn, "watched_flow")


def _stale(conn: Conn, template: Any, state: str = "waiting_for_dependencies",
           minutes: float = 61) -> Any:
    task = make_task(conn, template, "watched_flow")
    put_in_state(conn, task, state, minutes_ago=minutes)
    return task


async def test_one_pass_acts_and_counts(db: Database, conn: Conn, template: Any) -> None:
    task = _stale(conn, template)
    fresh = _stale(conn, template, minutes=1)
    before = (_metric("tasker_dlq_entries_total", reason="staleness_timeout"),
              _metric("tasker_tasks_finished_total", state="error"))
    detector = StalenessDetector(db=db, settings=StalenessSettings(), processor_uuid=None)
    result = await detector.run_once()
    assert [r["task_uuid"] for r in result.actions] == [task]
    assert result.counts == {"transitioned_to_dlq_and_error": 1}
    assert _metric("tasker_dlq_entries_total", reason="staleness_timeout") == before[0] + 1
    assert _metric("tasker_tasks_finished_total", state="error") == before[1] + 1
    assert detector.statistics()["actions"] == {"transitioned_to_dlq_and_error": 1}
    assert len(dlq_rows(conn, task)) == 1 and dlq_rows(conn, fresh) == []
    # Later, with the clock (p_now) moved past the threshold, the fresh task goes too.
    later = conn.execute("SELECT now() + interval '2 hours' AS t").fetchone()
    assert later is not None
    again = await detector.run_once(now=later["t"])
    assert [r["task_uuid"] for r in again.actions] == [fresh]


async def test_dry_run_changes_nothing(db: Database, conn: Conn, template: Any) -> None:
    task = _stale(conn, template, "steps_in_process", 31)
    before = _metric("tasker_dlq_entries_total", reason="staleness_timeout")
    detector = StalenessDetector(db=db, settings=StalenessSettings(dry_run=True),
                                 processor_uuid=None)
    result = await detector.run_once()
    assert result.counts == {"would_transition_to_dlq_and_error": 1}
    assert dlq_rows(conn) == []
    assert _metric("tasker_dlq_entries_total", reason="staleness_timeout") == before
    row = conn.execute("SELECT tasker.get_current_task_state_v1(%s) AS s", (task,)).fetchone()
    assert row is not None and row["s"] == "steps_in_process"


async def test_stuck_active_tasks_are_reported(db: Database, conn: Conn, template: Any) -> None:
    _stale(conn, template, "initializing", 15)
    _stale(conn, template, "evaluating_results", 12)
    _stale(conn, template, "initializing", 2)
    detector = StalenessDetector(db=db, settings=StalenessSettings(), processor_uuid=None)
    result = await detector.run_once()
    assert sorted(r["current_state"] for r in result.stuck) == [
        "evaluating_results", "initializing"]
    assert _metric("tasker_stuck_tasks", state="initializing") == 1
    assert _metric("tasker_stuck_tasks", state="evaluating_results") == 1
    assert _metric("tasker_stuck_tasks", state="enqueuing_steps") == 0
    assert detector.statistics()["stuck_reported"] == 2


async def _passes(detector: StalenessDetector, at_least: int, *, seconds: float = 30.0) -> None:
    """Wait for `at_least` passes, bounded in real time: under the autojump clock, virtual time
    races ahead while a pass waits for the database in a thread, so a bound in virtual time
    (even 10,000 s) could end before a slow query did."""
    deadline = time.monotonic() + seconds
    while detector.stats.passes < at_least:
        assert time.monotonic() < deadline, f"{detector.stats.passes} passes, not {at_least}"
        await trio.sleep(1)


async def test_loop_runs_every_interval(db: Database, conn: Conn, template: Any,
                                        autojump_clock: trio.testing.MockClock) -> None:
    settings = StalenessSettings(detection_interval_seconds=300)
    detector = StalenessDetector(db=db, settings=settings, processor_uuid=None)
    start = trio.current_time()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(detector.run)
        await trio.sleep(299)
        assert detector.stats.passes == 0
        await _passes(detector, 2)
        assert trio.current_time() - start >= 600
        # A failing pass (database breaker open) is logged; the loop keeps going.
        db.breaker = CircuitBreaker("database", failure_threshold=1, timeout_seconds=10_000,
                                    clock=trio.current_time)
        db.breaker.record_failure()
        passes = detector.stats.passes
        await trio.sleep(900)
        assert detector.stats.passes == passes
        db.breaker.reset()
        await _passes(detector, passes + 1)
        nursery.cancel_scope.cancel()
    db.breaker = None
    disabled = StalenessDetector(db=db, settings=StalenessSettings(enabled=False),
                                 processor_uuid=None)
    await disabled.run()  # returns at once
    assert disabled.stats.passes == 0


def _all_in_error(url: str, tasks: set[Any], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    with psycopg.connect(url, autocommit=True, row_factory=dict_row) as c:
        while time.monotonic() < deadline:
            rows = c.execute("SELECT count(*) AS n FROM unnest(%s::uuid[]) t"
                             " WHERE tasker.get_current_task_state_v1(t) = 'error'",
                             (list(tasks),)).fetchone()
            if rows is not None and rows["n"] == len(tasks):
                return
            time.sleep(0.02)
    raise AssertionError("stale tasks were not all moved to error")


async def test_two_finalizer_replicas_share_the_work(db_url: str, conn: Conn,
                                                     template: Any) -> None:
    tasks = {_stale(conn, template, "waiting_for_retry", 40) for _ in range(30)}
    settings = service_settings(db_url, staleness={"detection_interval_seconds": 0.05,
                                                   "batch_size": 3})
    runtimes: list[Runtime] = []
    async with trio.open_nursery() as nursery:
        for _ in range(2):
            await nursery.start(lambda task_status: serve_finalizer(
                settings, on_runtime=runtimes.append, task_status=task_status))
        await trio.to_thread.run_sync(_all_in_error, db_url, tasks)
        details = [rt.details()["staleness"] for rt in runtimes]
        nursery.cancel_scope.cancel()
    done = sum(d["actions"].get("transitioned_to_dlq_and_error", 0) for d in details)
    assert done == 30  # each task handled by exactly one replica
    assert all(d["passes"] > 0 for d in details)
    rows = dlq_rows(conn)
    assert len(rows) == 30 and {r["task_uuid"] for r in rows} == tasks
