"""The staleness SQL (SPEC §6.5): thresholds per state, template overrides, lifetime, dry
run, actions, replicas racing, stuck active states and the monitoring view."""

from __future__ import annotations

import threading
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from tests.operations.ops_support import (
    Conn,
    detect,
    dlq_rows,
    make_task,
    make_template,
    put_in_state,
    state_of,
)


@pytest.fixture
def default_template(conn: Conn) -> Any:
    return make_template(conn, "plain_flow")


def _task(conn: Conn, template: Any, state: str, minutes: float, *, name: str = "plain_flow",
          age: float | None = None) -> Any:
    task = make_task(conn, template, name)
    put_in_state(conn, task, state, minutes_ago=minutes, age_minutes=age)
    return task


@pytest.mark.parametrize(("state", "threshold"), [
    ("waiting_for_dependencies", 60), ("waiting_for_retry", 30), ("steps_in_process", 30)])
def test_each_watched_state_has_its_threshold(conn: Conn, default_template: Any, state: str,
                                             threshold: int) -> None:
    over = _task(conn, default_template, state, threshold + 1)
    under = _task(conn, default_template, state, threshold - 1)
    found = detect(conn, dry_run=True)
    assert set(found) == {over}
    assert found[over]["threshold_minutes"] == threshold
    assert found[over]["stale_reason"] == "state_threshold"
    assert float(found[over]["time_in_state_minutes"]) == pytest.approx(threshold + 1, abs=0.1)
    # The configured thresholds are the ones used.
    assert detect(conn, dry_run=True, deps=threshold + 5, retry=threshold + 5,
                  in_process=threshold + 5) == {}
    assert set(detect(conn, dry_run=True, deps=threshold - 2, retry=threshold - 2,
                      in_process=threshold - 2)) == {over, under}


def test_unwatched_states_are_never_stale(conn: Conn, default_template: Any) -> None:
    for state in ("pending", "blocked_by_failures", "complete", "initializing",
                  "evaluating_results", "error", "cancelled"):
        _task(conn, default_template, state, 100_000, age=10)
    assert detect(conn, dry_run=True, deps=1, retry=1, in_process=1) == {}


def test_dry_run_reports_and_changes_nothing(conn: Conn, default_template: Any) -> None:
    task = _task(conn, default_template, "waiting_for_dependencies", 90)
    found = detect(conn, dry_run=True)
    assert found[task]["action_taken"] == "would_transition_to_dlq_and_error"
    assert found[task]["dlq_entry_uuid"] is None
    assert state_of(conn, task) == "waiting_for_dependencies"
    assert dlq_rows(conn) == []
    assert detect(conn, dry_run=True).keys() == {task}  # still there next time


def test_stale_task_gets_dlq_entry_and_moves_to_error(conn: Conn, default_template: Any) -> None:
    task = _task(conn, default_template, "steps_in_process", 45)
    found = detect(conn)
    assert found[task]["action_taken"] == "transitioned_to_dlq_and_error"
    assert state_of(conn, task) == "error"
    [entry] = dlq_rows(conn, task)
    assert entry["dlq_entry_uuid"] == found[task]["dlq_entry_uuid"]
    assert entry["dlq_reason"] == "staleness_timeout"
    assert entry["resolution_status"] == "pending"
    assert entry["original_state"] == "steps_in_process"
    snap = entry["task_snapshot"]
    assert snap["task_uuid"] == str(task)
    assert snap["namespace"] == "ops"
    assert snap["task_name"] == "plain_flow"
    assert snap["current_state"] == "steps_in_process"
    assert snap["threshold_minutes"] == 30
    assert snap["time_in_state_minutes"] == pytest.approx(45, abs=0.1)
    assert set(snap["task_details"]) == {"correlation_id", "priority", "requested_at",
                                         "created_at"}
    assert [s["name"] for s in snap["steps"]] == ["plain_flow_s1"]
    assert entry["metadata"]["detection_method"] == "automatic_staleness"
    assert entry["metadata"]["threshold_minutes"] == 30
    last = conn.execute("SELECT from_state, to_state, metadata FROM tasker.task_transitions"
                        " WHERE task_uuid = %s AND most_recent", (task,)).fetchone()
    assert last is not None
    assert (last["from_state"], last["to_state"]) == ("steps_in_process", "error")
    assert last["metadata"]["event"] == "staleness_timeout"
    assert last["metadata"]["reason"] == "staleness_timeout"
    row = conn.execute("SELECT complete, completed_at FROM tasker.tasks WHERE task_uuid = %s",
                       (task,)).fetchone()
    assert row is not None and row["complete"] is False and row["completed_at"] is not None
    assert detect(conn) == {}  # done once, never again


def test_template_lifecycle_overrides_settings(conn: Conn, default_template: Any) -> None:
    strict = make_template(conn, "strict_flow", lifecycle={
        "max_waiting_for_dependencies_minutes": 5, "max_waiting_for_retry_minutes": 2,
        "max_steps_in_process_minutes": 120, "max_duration_minutes": None})
    strict_deps = _task(conn, strict, "waiting_for_dependencies", 6, name="strict_flow")
    strict_retry = _task(conn, strict, "waiting_for_retry", 3, name="strict_flow")
    strict_busy = _task(conn, strict, "steps_in_process", 61, name="strict_flow")
    plain_deps = _task(conn, default_template, "waiting_for_dependencies", 6)
    plain_busy = _task(conn, default_template, "steps_in_process", 61)
    found = detect(conn, dry_run=True)
    assert set(found) == {strict_deps, strict_retry, plain_busy}
    assert found[strict_deps]["threshold_minutes"] == 5
    assert found[strict_retry]["threshold_minutes"] == 2
    assert strict_busy not in found and plain_deps not in found


def test_maximum_lifetime(conn: Conn, default_template: Any) -> None:
    short = make_template(conn, "short_flow", lifecycle={"max_duration_minutes": 30})
    young_state_old_task = _task(conn, default_template, "waiting_for_dependencies", 1,
                                 age=25 * 60)
    short_lived = _task(conn, short, "waiting_for_dependencies", 1, name="short_flow", age=31)
    fine = _task(conn, default_template, "waiting_for_dependencies", 1, age=31)
    found = detect(conn)
    assert set(found) == {young_state_old_task, short_lived}
    assert {r["stale_reason"] for r in found.values()} == {"max_lifetime"}
    assert state_of(conn, fine) == "waiting_for_dependencies"
    assert set(detect(conn, dry_run=True, lifetime_hours=0.5)) == {fine}  # 31 min > 30
    assert state_of(conn, short_lived) == "error"


def test_controlled_time_through_p_now(conn: Conn, default_template: Any) -> None:
    task = _task(conn, default_template, "waiting_for_retry", 0)
    assert detect(conn, dry_run=True) == {}
    now = conn.execute("SELECT now() + interval '31 minutes' AS t").fetchone()
    assert now is not None
    found = detect(conn, now=now["t"])
    assert found[task]["action_taken"] == "transitioned_to_dlq_and_error"
    assert dlq_rows(conn, task)[0]["dlq_timestamp"] == now["t"]


def test_staleness_actions(conn: Conn) -> None:
    ignore = make_template(conn, "ignored_flow", lifecycle={"staleness_action": "none"})
    fail_only = make_template(conn, "failing_flow", lifecycle={"staleness_action": "error"})
    dlq_only = make_template(conn, "parked_flow", lifecycle={"auto_fail_on_timeout": False})
    a = _task(conn, ignore, "waiting_for_dependencies", 500, name="ignored_flow")
    b = _task(conn, fail_only, "waiting_for_dependencies", 500, name="failing_flow")
    c = _task(conn, dlq_only, "waiting_for_dependencies", 500, name="parked_flow")
    dry = detect(conn, dry_run=True)
    assert {k: v["action_taken"] for k, v in dry.items()} == {
        b: "would_transition_to_error_only", c: "would_move_to_dlq_only"}
    found = detect(conn)
    assert {k: v["action_taken"] for k, v in found.items()} == {
        b: "transitioned_to_error_only", c: "moved_to_dlq_only"}
    assert (state_of(conn, a), state_of(conn, b), state_of(conn, c)) == (
        "waiting_for_dependencies", "error", "waiting_for_dependencies")
    assert dlq_rows(conn, b) == [] and len(dlq_rows(conn, c)) == 1
    assert detect(conn) == {}  # c has an open entry: left to the operator


def test_settings_switch_actions_off(conn: Conn, default_template: Any) -> None:
    task = _task(conn, default_template, "waiting_for_dependencies", 61)
    assert detect(conn, auto_error=False, auto_dlq=False) == {}
    found = detect(conn, auto_error=False)
    assert found[task]["action_taken"] == "moved_to_dlq_only"
    assert state_of(conn, task) == "waiting_for_dependencies"


def test_existing_pending_entry_excludes_the_task(conn: Conn, default_template: Any) -> None:
    task = _task(conn, default_template, "waiting_for_dependencies", 61)
    conn.execute("SELECT tasker.create_manual_dlq_entry_v1(%s, 'manual_dlq', 'looking')", (task,))
    assert detect(conn) == {}


def test_replica_holding_a_task_makes_the_other_skip_it(db_url: str, conn: Conn,
                                                        default_template: Any) -> None:
    tasks = {_task(conn, default_template, "steps_in_process", 40) for _ in range(3)}
    with psycopg.connect(db_url, row_factory=dict_row) as replica_a:  # one open transaction
        first = detect(replica_a)
        assert set(first) == tasks
        assert detect(conn) == {}  # replica B: every candidate is locked -> skipped
        replica_a.commit()
    assert detect(conn) == {}  # and now they are in error
    assert len(dlq_rows(conn)) == 3


def test_two_replicas_racing_never_process_a_task_twice(db_url: str, conn: Conn,
                                                        default_template: Any) -> None:
    tasks = {_task(conn, default_template, "waiting_for_retry", 45) for _ in range(40)}
    barrier = threading.Barrier(2)
    seen: list[list[Any]] = [[], []]

    def replica(i: int) -> None:
        with psycopg.connect(db_url, autocommit=True, row_factory=dict_row) as c:
            barrier.wait()
            while found := detect(c, batch=4):
                seen[i].extend(k for k, v in found.items()
                               if v["action_taken"] == "transitioned_to_dlq_and_error")

    threads = [threading.Thread(target=replica, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    processed = seen[0] + seen[1]
    assert sorted(processed) == sorted(tasks)  # every task exactly once
    assert len(dlq_rows(conn)) == 40
    assert {state_of(conn, t) for t in tasks} == {"error"}


def test_find_stuck_tasks_reports_active_states(conn: Conn, default_template: Any) -> None:
    stuck = {state: _task(conn, default_template, state, 15)
             for state in ("initializing", "enqueuing_steps", "evaluating_results",
                           "steps_in_process")}
    _task(conn, default_template, "initializing", 5)
    _task(conn, default_template, "waiting_for_dependencies", 500)
    rows = conn.execute("SELECT * FROM tasker.find_stuck_tasks_v1(10)").fetchall()
    assert {r["task_uuid"]: r["current_state"] for r in rows} == {
        t: s for s, t in stuck.items()}
    assert all(float(r["minutes_in_state"]) == pytest.approx(15, abs=0.1) for r in rows)


def test_staleness_monitoring_view(conn: Conn, default_template: Any) -> None:
    stale = _task(conn, default_template, "waiting_for_dependencies", 61)
    warning = _task(conn, default_template, "waiting_for_dependencies", 50)
    healthy = _task(conn, default_template, "waiting_for_dependencies", 10)
    _task(conn, default_template, "complete", 1000)
    rows = conn.execute("SELECT * FROM tasker.v_task_staleness_monitoring").fetchall()
    assert [(r["task_uuid"], r["health_status"]) for r in rows] == [
        (stale, "stale"), (warning, "warning"), (healthy, "healthy")]
    assert rows[0]["staleness_threshold_minutes"] == 60
