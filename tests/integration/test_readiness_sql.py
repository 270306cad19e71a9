"""Step readiness, task execution context, levels and ancestry on crafted DAGs (SPEC §3.2-3.3)."""

from __future__ import annotations

import random
import time
import uuid
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import psycopg
import pytest
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from tasker_shared.domain.states import StepState
from tests.integration.dag_support import (
    DictConn,
    context,
    force_step_state,
    force_task_state,
    make_task,
    named_task,
    readiness,
    set_step,
)

DIAMOND = {"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"]}
TREE = {"root": [], "left": ["root"], "right": ["root"], "ld": ["left"], "le": ["left"],
        "rf": ["right"], "rg": ["right"], "final": ["ld", "le", "rf", "rg"]}


def db_now(conn: DictConn) -> datetime:
    row = conn.execute("SELECT now() AS n").fetchone()
    assert row is not None
    return row["n"]  # type: ignore[no-any-return]


@pytest.fixture
def nt(conn: DictConn) -> UUID:
    return named_task(conn)


# -- dependencies -------------------------------------------------------------------------------


def test_parent_in_every_state(conn: DictConn, nt: UUID) -> None:
    for state in StepState:
        task, ids = make_task(conn, nt, {"p": [], "q": [], "c": ["p", "q"]})
        force_step_state(conn, ids["q"], "complete")
        if state is not StepState.PENDING:
            force_step_state(conn, ids["p"], state.value)
        r = readiness(conn, task, ids)["c"]
        satisfied = state in (StepState.COMPLETE, StepState.RESOLVED_MANUALLY)
        assert r["dependencies_satisfied"] is satisfied, state
        assert r["ready_for_execution"] is satisfied, state
        assert (r["total_parents"], r["completed_parents"]) == (2, 1 + satisfied), state
        assert r["current_state"] == "pending"


def test_roots_have_no_parents_and_are_ready(conn: DictConn, nt: UUID) -> None:
    task, ids = make_task(conn, nt, DIAMOND)
    r = readiness(conn, task, ids)
    assert {n for n, row in r.items() if row["ready_for_execution"]} == {"a"}
    assert r["a"]["total_parents"] == 0
    assert r["a"]["dependencies_satisfied"]
    assert (r["d"]["total_parents"], r["d"]["completed_parents"]) == (2, 0)
    assert r["a"]["attempts"] == 0
    assert r["a"]["max_attempts"] == 3
    assert r["a"]["next_retry_at"] is None
    assert r["a"]["last_failure_at"] is None
    assert r["a"]["name"].endswith("a")
    assert r["a"]["task_uuid"] == task


def test_resolved_manually_parents_satisfy_dependencies(conn: DictConn, nt: UUID) -> None:
    task, ids = make_task(conn, nt, DIAMOND)
    for name in ("a", "b"):
        force_step_state(conn, ids[name], "complete")
    force_step_state(conn, ids["c"], "resolved_manually")
    r = readiness(conn, task, ids)["d"]
    assert r["dependencies_satisfied"]
    assert r["ready_for_execution"]
    assert r["completed_parents"] == 2


def test_only_pending_and_waiting_for_retry_steps_can_be_ready(conn: DictConn, nt: UUID) -> None:
    for state in StepState:
        task, ids = make_task(conn, nt, {"x": []})
        if state is not StepState.PENDING:
            force_step_state(conn, ids["x"], state.value)
        r = readiness(conn, task, ids)["x"]
        assert r["current_state"] == state.value
        assert r["ready_for_execution"] is (state in (StepState.PENDING,
                                                      StepState.WAITING_FOR_RETRY)), state


@pytest.mark.parametrize(("processed", "in_process"), [(True, False), (False, True)])
def test_processed_and_in_process_flags_block(conn: DictConn, nt: UUID, processed: bool,
                                              in_process: bool) -> None:
    task, ids = make_task(conn, nt, {"x": []})
    set_step(conn, ids["x"], processed=processed, in_process=in_process)
    r = readiness(conn, task, ids)["x"]
    assert r["dependencies_satisfied"]
    assert r["retry_eligible"]
    assert not r["ready_for_execution"]


# -- retry eligibility ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("retryable", "attempts", "max_attempts", "eligible"),
    [
        (False, None, 3, True),   # the first attempt is always eligible
        (False, 0, 1, True),
        (False, 1, 3, False),     # not retryable after one attempt
        (True, 2, 3, True),
        (True, 3, 3, False),      # attempts exhausted
        (True, 4, 3, False),
        (True, 0, 1, True),
        (True, 1, 1, False),
    ],
)
def test_retry_eligibility(conn: DictConn, nt: UUID, retryable: bool, attempts: int | None,
                           max_attempts: int, eligible: bool) -> None:
    task, ids = make_task(conn, nt, {"x": []},
                          step_options={"x": {"retryable": retryable,
                                              "max_attempts": max_attempts}})
    set_step(conn, ids["x"], attempts=attempts)
    force_step_state(conn, ids["x"], "waiting_for_retry")
    r = readiness(conn, task, ids)["x"]
    assert r["retry_eligible"] is eligible
    assert r["ready_for_execution"] is eligible
    assert r["attempts"] == (attempts or 0)
    assert r["max_attempts"] == max_attempts


def test_reset_for_retry_makes_an_exhausted_step_ready_again(conn: DictConn, nt: UUID) -> None:
    task, ids = make_task(conn, nt, {"x": []})
    set_step(conn, ids["x"], attempts=3)
    force_step_state(conn, ids["x"], "error", at=db_now(conn) - timedelta(seconds=10))
    assert not readiness(conn, task, ids)["x"]["retry_eligible"]
    row = conn.execute("SELECT tasker.transition_step_v1(%s, ARRAY['error'], 'reset_for_retry')"
                       " AS s", (ids["x"],)).fetchone()
    assert row is not None
    assert row["s"] == "pending"
    r = readiness(conn, task, ids)["x"]
    assert r["attempts"] == 0
    assert r["retry_eligible"]
    assert r["ready_for_execution"]


# -- backoff ----------------------------------------------------------------------------------


def test_requested_backoff_not_yet_expired(conn: DictConn, nt: UUID) -> None:
    task, ids = make_task(conn, nt, {"x": []})
    last = db_now(conn) - timedelta(seconds=10)
    set_step(conn, ids["x"], attempts=1, backoff_request_seconds=30, last_attempted_at=last)
    force_step_state(conn, ids["x"], "waiting_for_retry")
    r = readiness(conn, task, ids)["x"]
    assert r["next_retry_at"] == last + timedelta(seconds=30)
    assert r["retry_eligible"]
    assert not r["ready_for_execution"]
    assert r["backoff_request_seconds"] == Decimal(30)
    assert r["last_attempted_at"] == last


def test_requested_backoff_expired(conn: DictConn, nt: UUID) -> None:
    task, ids = make_task(conn, nt, {"x": []})
    last = db_now(conn) - timedelta(seconds=31)
    set_step(conn, ids["x"], attempts=1, backoff_request_seconds=Decimal("30.5"),
             last_attempted_at=last)
    force_step_state(conn, ids["x"], "waiting_for_retry")
    r = readiness(conn, task, ids)["x"]
    assert r["next_retry_at"] == last + timedelta(seconds=30.5)
    assert r["ready_for_execution"]


def test_error_time_fallback_backoff(conn: DictConn, nt: UUID) -> None:
    """Without a requested backoff: latest error transition + min(2^attempts, 60) seconds."""
    task, ids = make_task(conn, nt, {"x": [], "y": [], "z": []})
    now = db_now(conn)
    for name, attempts, failed_ago in (("x", 2, 1), ("y", 2, 10), ("z", 10, 50)):
        set_step(conn, ids[name], attempts=attempts, max_attempts=20)
        force_step_state(conn, ids[name], "error", at=now - timedelta(seconds=500))
        force_step_state(conn, ids[name], "error", at=now - timedelta(seconds=failed_ago))
        force_step_state(conn, ids[name], "pending")
    r = readiness(conn, task, ids)
    assert r["x"]["last_failure_at"] == now - timedelta(seconds=1)
    assert r["x"]["next_retry_at"] == now - timedelta(seconds=1) + timedelta(seconds=4)
    assert not r["x"]["ready_for_execution"]  # 4 s backoff, failed 1 s ago
    assert r["y"]["ready_for_execution"]  # 4 s backoff, failed 10 s ago
    # 2^10 capped at 60 s: failed 50 s ago, still waiting.
    assert r["z"]["next_retry_at"] == now - timedelta(seconds=50) + timedelta(seconds=60)
    assert not r["z"]["ready_for_execution"]


def test_requested_backoff_wins_over_error_time(conn: DictConn, nt: UUID) -> None:
    task, ids = make_task(conn, nt, {"x": [], "y": []})
    now = db_now(conn)
    for name in ("x", "y"):
        set_step(conn, ids[name], attempts=1, backoff_request_seconds=1)
        force_step_state(conn, ids[name], "error", at=now - timedelta(seconds=1))
        force_step_state(conn, ids[name], "pending")
    set_step(conn, ids["x"], last_attempted_at=now - timedelta(seconds=5))
    r = readiness(conn, task, ids)
    assert r["x"]["next_retry_at"] == now - timedelta(seconds=4)  # requested: 5 s ago + 1 s
    assert r["x"]["ready_for_execution"]
    # No last_attempted_at: the request cannot apply, the error time + 2^1 s does.
    assert r["y"]["next_retry_at"] == now + timedelta(seconds=1)
    assert not r["y"]["ready_for_execution"]


def test_next_retry_time_function(conn: DictConn) -> None:
    t = datetime.fromisoformat("2030-01-01T00:00:00+00:00")

    def call(*args: Any) -> Any:
        row = conn.execute(
            "SELECT tasker.calculate_step_next_retry_time_v1(%s, %s, %s, %s) AS r", args
        ).fetchone()
        assert row is not None
        return row["r"]

    assert call(None, None, None, 3) is None
    assert call(10, t, None, 0) == t + timedelta(seconds=10)
    assert call(10, None, t, 0) == t + timedelta(seconds=1)
    assert call(None, t, t, 5) == t + timedelta(seconds=32)
    assert call(None, None, t, 6) == t + timedelta(seconds=60)
    assert call(None, None, t, None) == t + timedelta(seconds=1)
    row = conn.execute("SELECT tasker.calculate_step_next_retry_time_v1(NULL, NULL, %s, 3, 5, 3)"
                       " AS r", (t,)).fetchone()
    assert row is not None
    assert row["r"] == t + timedelta(seconds=5)


def test_readiness_predicate_truth_table(conn: DictConn) -> None:
    rows = conn.execute("""
        SELECT s, p, ip, d, r, n, tasker.evaluate_step_state_readiness_v1(s, p, ip, d, r, n) AS v
          FROM unnest(ARRAY['pending','waiting_for_retry','enqueued','error']) s,
               unnest(ARRAY[false, true, NULL]) p, unnest(ARRAY[false, true, NULL]) ip,
               unnest(ARRAY[false, true]) d, unnest(ARRAY[false, true]) r,
               unnest(ARRAY[NULL, now() - interval '1 s', now() + interval '1 h']) n""")
    count = 0
    for row in rows.fetchall():
        count += 1
        expected = (row["s"] in ("pending", "waiting_for_retry") and not row["p"]
                    and not row["ip"] and row["d"] and row["r"]
                    and (row["n"] is None or row["n"] <= db_now(conn)))
        assert row["v"] is expected, row
    assert count == 4 * 3 * 3 * 2 * 2 * 3


# -- execution context ------------------------------------------------------------------------


def test_context_has_ready_steps(conn: DictConn, nt: UUID) -> None:
    task, _ = make_task(conn, nt, DIAMOND)
    c = context(conn, task)
    assert c["task_uuid"] == task
    assert c["named_task_uuid"] == nt
    assert c["status"] == "pending"
    assert (c["total_steps"], c["pending_steps"], c["ready_steps"], c["completed_steps"]) == (
        4, 4, 1, 0)
    assert c["execution_status"] == "has_ready_steps"
    assert c["recommended_action"] == "execute_ready_steps"
    assert c["health_status"] == "healthy"
    assert c["completion_percentage"] == Decimal("0")


def test_context_processing(conn: DictConn, nt: UUID) -> None:
    for state, field in (("enqueued", "enqueued_steps"), ("in_progress", "in_progress_steps"),
                         ("enqueued_for_orchestration", "in_progress_steps"),
                         ("enqueued_as_error_for_orchestration", "in_progress_steps")):
        task, ids = make_task(conn, nt, DIAMOND)
        force_step_state(conn, ids["a"], state)
        c = context(conn, task)
        assert c["execution_status"] == "processing", state
        assert c["recommended_action"] == "wait_for_completion"
        assert c[field] == 1
        assert c["ready_steps"] == 0
        assert c["pending_steps"] == 3
        assert c["health_status"] == "healthy"


def test_context_blocked_by_failures_wins(conn: DictConn, nt: UUID) -> None:
    task, ids = make_task(conn, nt, DIAMOND)
    force_step_state(conn, ids["a"], "complete")
    force_step_state(conn, ids["b"], "error")  # c is ready, but an error blocks the task
    # Exhausted: the last result asked for a retry, but no attempt is left.
    set_step(conn, ids["b"], attempts=3, results=Jsonb({"metadata": {"retryable": True}}))
    c = context(conn, task)
    assert c["execution_status"] == "blocked_by_failures"
    assert c["recommended_action"] == "handle_failures"
    assert c["health_status"] == "blocked"
    assert (c["failed_steps"], c["ready_steps"], c["completed_steps"]) == (1, 1, 1)
    assert c["exhausted_failed_steps"] == 1
    assert c["completion_percentage"] == Decimal("25.00")


def test_context_all_complete(conn: DictConn, nt: UUID) -> None:
    task, ids = make_task(conn, nt, TREE)
    for name, step in ids.items():
        force_step_state(conn, step, "resolved_manually" if name == "ld" else "complete")
    c = context(conn, task)
    assert c["execution_status"] == "all_complete"
    assert c["recommended_action"] == "finalize_task"
    assert c["completion_percentage"] == Decimal("100.00")
    assert c["completed_steps"] == c["total_steps"] == 8
    assert c["health_status"] == "healthy"


def test_context_waiting_for_dependencies(conn: DictConn, nt: UUID) -> None:
    task, ids = make_task(conn, nt, {"a": [], "b": [], "c": ["a", "b"]})
    force_step_state(conn, ids["a"], "complete")
    set_step(conn, ids["b"], attempts=1, backoff_request_seconds=600,
             last_attempted_at=db_now(conn))
    force_step_state(conn, ids["b"], "waiting_for_retry")
    force_task_state(conn, task, "waiting_for_retry")
    c = context(conn, task)
    assert c["status"] == "waiting_for_retry"
    assert c["execution_status"] == "waiting_for_dependencies"
    assert c["recommended_action"] == "wait_for_dependencies"
    assert c["waiting_for_retry_steps"] == 1
    assert c["health_status"] == "recovering"
    assert c["completion_percentage"] == Decimal("33.33")


def test_context_of_a_task_without_steps(conn: DictConn, nt: UUID) -> None:
    task, _ = make_task(conn, nt, {})
    c = context(conn, task)
    assert c["total_steps"] == 0
    assert c["execution_status"] == "waiting_for_dependencies"
    assert c["completion_percentage"] == Decimal("0")


def test_context_of_an_unknown_task_is_empty(conn: DictConn) -> None:
    rows = conn.execute("SELECT * FROM tasker.get_task_execution_context_v1(%s)",
                        (uuid.uuid4(),)).fetchall()
    assert rows == []


# -- batch variants ---------------------------------------------------------------------------


def test_batch_variants_equal_single_calls(conn: DictConn, nt: UUID) -> None:
    tasks = []
    for shape, done in ((DIAMOND, ["a"]), (TREE, ["root", "left"]), ({"x": []}, [])):
        task, ids = make_task(conn, nt, shape)
        for name in done:
            force_step_state(conn, ids[name], "complete")
        tasks.append(task)
    single = [row for t in tasks for row in conn.execute(
        "SELECT * FROM tasker.get_step_readiness_status_v1(%s)", (t,)).fetchall()]
    batch = conn.execute("SELECT * FROM tasker.get_step_readiness_status_batch_v1(%s)",
                         (tasks,)).fetchall()
    key = lambda r: r["workflow_step_uuid"]  # noqa: E731
    assert sorted(batch, key=key) == sorted(single, key=key)

    contexts = [context(conn, t) for t in tasks]
    # Duplicates and unknown tasks in the array change nothing.
    rows = conn.execute("SELECT * FROM tasker.get_task_execution_contexts_batch_v1(%s)",
                        ([*tasks, tasks[0], uuid.uuid4()],)).fetchall()
    assert sorted(rows, key=lambda r: r["task_uuid"]) == sorted(contexts,
                                                                key=lambda r: r["task_uuid"])


def test_readiness_for_listed_steps_only(conn: DictConn, nt: UUID) -> None:
    task, ids = make_task(conn, nt, DIAMOND)
    force_step_state(conn, ids["a"], "complete")
    rows = conn.execute("SELECT * FROM tasker.get_step_readiness_status_v1(%s, %s)",
                        (task, [ids["b"], ids["d"]])).fetchall()
    got = {r["workflow_step_uuid"]: r for r in rows}
    assert set(got) == {ids["b"], ids["d"]}
    assert got[ids["b"]]["ready_for_execution"]
    assert (got[ids["d"]]["total_parents"], got[ids["d"]]["completed_parents"]) == (2, 0)
    other, other_ids = make_task(conn, nt, {"x": []})
    rows = conn.execute("SELECT * FROM tasker.get_step_readiness_status_batch_v1(%s, %s)",
                        ([task, other], [ids["a"], other_ids["x"]])).fetchall()
    assert {r["workflow_step_uuid"] for r in rows} == {ids["a"], other_ids["x"]}


# -- levels and ancestry ----------------------------------------------------------------------


def levels(conn: DictConn, task: UUID, ids: dict[str, UUID]) -> dict[str, int]:
    names = {v: k for k, v in ids.items()}
    rows = conn.execute("SELECT * FROM tasker.calculate_dependency_levels_v1(%s)", (task,))
    return {names[r["workflow_step_uuid"]]: r["dependency_level"] for r in rows.fetchall()}


def test_dependency_levels(conn: DictConn, nt: UUID) -> None:
    task, ids = make_task(conn, nt, TREE)
    assert levels(conn, task, ids) == {"root": 0, "left": 1, "right": 1, "ld": 2, "le": 2,
                                       "rf": 2, "rg": 2, "final": 3}
    # Longest path wins: d is reached from a directly and through b -> c.
    task, ids = make_task(conn, nt, {"a": [], "b": ["a"], "c": ["b"], "d": ["a", "c"],
                                     "lone": []})
    assert levels(conn, task, ids) == {"a": 0, "b": 1, "c": 2, "d": 3, "lone": 0}


def ancestors(conn: DictConn, step: UUID, ids: dict[str, UUID]) -> dict[str, dict[str, Any]]:
    names = {v: k for k, v in ids.items()}
    rows = conn.execute("SELECT * FROM tasker.get_step_transitive_dependencies_v1(%s)", (step,))
    return {names[r["workflow_step_uuid"]]: r for r in rows.fetchall()}


def test_transitive_dependencies_with_distances(conn: DictConn, nt: UUID) -> None:
    _, ids = make_task(conn, nt, TREE)
    conn.execute("UPDATE tasker.workflow_steps SET results = '{\"v\": 1}', processed = true"
                 " WHERE workflow_step_uuid = %s", (ids["root"],))
    up = ancestors(conn, ids["final"], ids)
    assert {n: r["distance"] for n, r in up.items()} == {
        "ld": 1, "le": 1, "rf": 1, "rg": 1, "left": 2, "right": 2, "root": 3}
    assert up["root"]["results"] == {"v": 1}
    assert up["root"]["processed"]
    assert up["ld"]["results"] is None
    assert not up["ld"]["processed"]
    assert up["ld"]["name"].endswith("ld")
    assert ancestors(conn, ids["root"], ids) == {}
    # The nearest distance counts when an ancestor is reachable along several paths.
    _task, ids = make_task(conn, nt, {"a": [], "b": ["a"], "c": ["b"], "d": ["a", "c"]})
    assert {n: r["distance"] for n, r in ancestors(conn, ids["d"], ids).items()} == {
        "a": 1, "c": 1, "b": 2}


def test_deep_diamond_chains_stay_fast(conn: DictConn, nt: UUID) -> None:
    """20 diamonds in a row (2^20 root-to-leaf paths): creation (with its cycle check),
    levels and ancestry must not enumerate paths."""
    n = 20
    dag: dict[str, list[str]] = {"n0": []}
    for i in range(n):
        dag[f"l{i}"] = [f"n{i}"]
        dag[f"r{i}"] = [f"n{i}"]
        dag[f"n{i + 1}"] = [f"l{i}", f"r{i}"]
    started = time.monotonic()
    task, ids = make_task(conn, nt, dag)
    lv = levels(conn, task, ids)
    up = ancestors(conn, ids[f"n{n}"], ids)
    elapsed = time.monotonic() - started
    expected_levels = {f"n{i}": 2 * i for i in range(n + 1)}
    expected_levels.update({f"{side}{i}": 2 * i + 1 for i in range(n) for side in "lr"})
    assert lv == expected_levels
    assert {k: r["distance"] for k, r in up.items()} == {
        k: 2 * n - v for k, v in expected_levels.items() if k != f"n{n}"}
    assert elapsed < 3.0, f"took {elapsed:.1f}s"  # path enumeration took ~7 s


# -- discovery --------------------------------------------------------------------------------


def discover(conn: DictConn, limit: int = 5) -> list[dict[str, Any]]:
    return conn.execute("SELECT * FROM tasker.get_next_ready_tasks_v1(%s)", (limit,)).fetchall()


def test_discovery_candidates_and_order(conn: DictConn, nt: UUID) -> None:
    now = db_now(conn)
    pending_low, _ = make_task(conn, nt, DIAMOND, priority=1)
    pending_high, _ = make_task(conn, nt, DIAMOND, priority=5)
    waiting_ready, ids = make_task(conn, nt, DIAMOND, priority=3)
    force_step_state(conn, ids["a"], "complete")
    force_task_state(conn, waiting_ready, "waiting_for_dependencies")
    waiting_idle, ids = make_task(conn, nt, DIAMOND, priority=9)
    force_step_state(conn, ids["a"], "in_progress")
    force_task_state(conn, waiting_idle, "waiting_for_dependencies")
    waiting_stale, ids = make_task(conn, nt, DIAMOND, priority=9)
    force_task_state(conn, waiting_stale, "waiting_for_dependencies",
                     at=now - timedelta(minutes=61))
    retry_stale, ids = make_task(conn, nt, DIAMOND, priority=9)
    force_task_state(conn, retry_stale, "waiting_for_retry", at=now - timedelta(minutes=31))
    running, _ = make_task(conn, nt, DIAMOND, priority=9)
    force_task_state(conn, running, "steps_in_process")

    got = discover(conn)
    assert [r["task_uuid"] for r in got] == [pending_high, waiting_ready, pending_low]
    assert [r["current_state"] for r in got] == ["pending", "waiting_for_dependencies",
                                                 "pending"]
    assert got[1]["execution_status"] == "has_ready_steps"
    assert got[0]["computed_priority"] >= 5
    assert [r["task_uuid"] for r in discover(conn, 1)] == [pending_high]


def test_discovery_priority_decays_with_time_in_state(conn: DictConn, nt: UUID) -> None:
    now = db_now(conn)
    fresh, _ = make_task(conn, nt, DIAMOND, priority=2)
    old, _ = make_task(conn, nt, DIAMOND, priority=10)
    force_task_state(conn, old, "pending", at=now - timedelta(hours=12))
    ancient, _ = make_task(conn, nt, DIAMOND, priority=100)
    force_task_state(conn, ancient, "pending", at=now - timedelta(hours=30))
    got = {r["task_uuid"]: r["computed_priority"] for r in discover(conn)}
    assert got[fresh] == pytest.approx(2, abs=0.01)
    assert got[old] == pytest.approx(10 * 2.718281828 ** -1, abs=0.01)
    assert got[ancient] == pytest.approx(0.1)


def test_discovery_skips_locked_tasks(conn: DictConn, db_url: str, nt: UUID) -> None:
    for _ in range(4):
        make_task(conn, nt, DIAMOND)
    with psycopg.connect(db_url, row_factory=dict_row) as a, \
            psycopg.connect(db_url, row_factory=dict_row) as b:
        first = {r["task_uuid"] for r in a.execute(
            "SELECT * FROM tasker.get_next_ready_tasks_v1(2)").fetchall()}
        second = {r["task_uuid"] for r in b.execute(
            "SELECT * FROM tasker.get_next_ready_tasks_v1(5)").fetchall()}
        assert len(first) == 2
        assert first.isdisjoint(second)
        assert len(second) >= 1


# The discovery rules of SPEC §3.3 written as one plain query: the function must agree.
REFERENCE_DISCOVERY = """
    WITH cand AS (
        SELECT tt.task_uuid, tt.to_state::text AS state, t.priority, t.created_at,
               extract(epoch FROM now() - tt.created_at) / 3600.0 AS state_hours,
               extract(epoch FROM now() - t.created_at) / 3600.0 AS age_hours
          FROM tasker.task_transitions tt JOIN tasker.tasks t USING (task_uuid)
         WHERE tt.most_recent
           AND (tt.to_state = 'pending'
                OR (tt.to_state = 'waiting_for_dependencies'
                    AND tt.created_at >= now() - interval '60 minutes')
                OR (tt.to_state = 'waiting_for_retry'
                    AND tt.created_at >= now() - interval '30 minutes'))
    ), pri AS (
        SELECT c.*, CASE WHEN state_hours < 1 THEN priority + age_hours * 0.1
                         WHEN state_hours < 24 THEN priority * exp(-state_hours / 12.0)
                         ELSE 0.1 END AS cp
          FROM cand c ORDER BY cp DESC, created_at LIMIT %(limit)s * 10
    )
    SELECT p.task_uuid, p.state, p.cp::double precision AS cp,
           COALESCE(x.execution_status, 'pending') AS es
      FROM pri p
      LEFT JOIN LATERAL tasker.get_task_execution_context_v1(p.task_uuid) x
             ON p.state <> 'pending'
     WHERE p.state = 'pending' OR x.execution_status = 'has_ready_steps'
     ORDER BY p.cp DESC, p.created_at LIMIT %(limit)s
"""


def test_discovery_agrees_with_the_reference_rules(conn: DictConn, db_url: str,
                                                   nt: UUID) -> None:
    rng = random.Random(7)
    now = db_now(conn)
    for i in range(40):
        task, ids = make_task(conn, nt, DIAMOND, priority=rng.randint(-5, 9))
        conn.execute("UPDATE tasker.tasks SET created_at = %s WHERE task_uuid = %s",
                     (now - timedelta(minutes=rng.randint(0, 3000)), task))
        state = rng.choice(["pending", "waiting_for_dependencies", "waiting_for_retry",
                            "steps_in_process", "complete"])
        minutes = rng.choice([1, 20, 45, 90, 600, 2000])
        if state != "pending" or i % 3 == 0:
            force_task_state(conn, task, state, at=now - timedelta(minutes=minutes))
        if rng.random() < 0.5:
            force_step_state(conn, ids["a"], "complete")  # b and c become ready
        if rng.random() < 0.2:
            force_step_state(conn, ids["a"], "error")
    with psycopg.connect(db_url, row_factory=dict_row) as tx:  # one transaction: one now()
        for limit in (1, 2, 3, 5, 8, 50):
            got = tx.execute("SELECT * FROM tasker.get_next_ready_tasks_v1(%s)",
                             (limit,)).fetchall()
            want = tx.execute(REFERENCE_DISCOVERY, {"limit": limit}).fetchall()
            assert [r["task_uuid"] for r in got] == [r["task_uuid"] for r in want], limit
            assert [r["current_state"] for r in got] == [r["state"] for r in want]
            assert [r["execution_status"] for r in got] == [r["es"] for r in want]
            for g, w in zip(got, want, strict=True):
                assert g["computed_priority"] == pytest.approx(w["cp"], rel=1e-9)
            tx.rollback()
