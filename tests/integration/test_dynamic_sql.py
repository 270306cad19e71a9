"""SQL of dynamic workflows (migration 0008) on a real PostgreSQL: checkpoints that report
whether they were saved, fail_fast sibling cancellation, stall detection and its monitor."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from tasker_finalizer.stalls import CheckpointStallMonitor, find_stalled_checkpoints
from tasker_shared.db.database import Database
from tasker_shared.runtime.settings import BatchSettings

Conn = psycopg.Connection[dict[str, Any]]


def _worker(batch_id: str) -> dict[str, Any]:
    return {"name": f"w_{batch_id}", "inputs": {
        "cursor": {"batch_id": batch_id, "start_cursor": 0, "end_cursor": 10, "batch_size": 10},
        "batch_metadata": {"failure_strategy": "fail_fast"}, "is_no_op": False}}


def make_task(conn: Conn) -> tuple[str, dict[str, str]]:
    """A task with a batchable step `b`, workers w_001..w_004 and a plain step `p`."""
    named = conn.execute("SELECT tasker.register_template_v1('dyn', 't', '1', NULL, '{}') AS u"
                         ).fetchone()
    assert named is not None
    steps = [{"name": "b"}, {"name": "p"}, *(_worker(f"00{i}") for i in range(1, 5))]
    edges = [{"from": "b", "to": f"w_00{i}", "name": "batch_dependency"} for i in range(1, 5)]
    row = conn.execute("SELECT tasker.create_task_v1(%s, %s, %s, %s) AS t", (
        named["u"], Jsonb({"identity_hash": uuid.uuid4().hex,
                           "correlation_id": str(uuid.uuid4())}), Jsonb(steps), Jsonb(edges)),
    ).fetchone()
    assert row is not None
    task = str(row["t"])
    ids = {r["name"]: str(r["workflow_step_uuid"]) for r in conn.execute(
        "SELECT ns.name, ws.workflow_step_uuid FROM tasker.workflow_steps ws"
        " JOIN tasker.named_steps ns ON ns.named_step_uuid = ws.named_step_uuid"
        " WHERE ws.task_uuid = %s", (task,))}
    return task, ids


def start(conn: Conn, step: str) -> None:
    """pending -> enqueued -> in_progress, attempt 1 (what a claim does)."""
    conn.execute("SELECT tasker.transition_step_v1(%s, ARRAY['pending'], 'enqueue')", (step,))
    conn.execute("SELECT tasker.transition_step_v1(%s, ARRAY['enqueued'], 'start')", (step,))
    conn.execute("UPDATE tasker.workflow_steps SET attempts = 1, last_attempted_at = now(),"
                 " in_process = true WHERE workflow_step_uuid = %s", (step,))


def state(conn: Conn, step: str) -> str:
    row = conn.execute("SELECT tasker.get_current_step_state_v1(%s) AS s", (step,)).fetchone()
    assert row is not None
    return str(row["s"])


def save(conn: Conn, step: str, attempt: int, cursor: int) -> Any:
    row = conn.execute("SELECT tasker.save_checkpoint_v2(%s, %s, %s, %s, %s) AS c",
                       (step, attempt, Jsonb(cursor), cursor, Jsonb({"sum": cursor}))).fetchone()
    assert row is not None
    return row["c"]


def test_checkpoint_saved_with_history_or_refused(conn: Conn) -> None:
    _, ids = make_task(conn)
    step = ids["w_001"]
    assert save(conn, step, 1, 3) is None  # not in progress yet
    start(conn, step)
    assert save(conn, step, 2, 3) is None  # another attempt owns it
    first = save(conn, step, 1, 3)
    second = save(conn, step, 1, 6)
    assert first["cursor"] == 3
    assert second["accumulated_results"] == {"sum": 6}
    assert second["items_processed"] == 6
    assert [h["cursor"] for h in second["history"]] == [3, 6]
    conn.execute("SELECT tasker.transition_step_v1(%s, ARRAY['in_progress'], 'cancel')", (step,))
    assert save(conn, step, 1, 9) is None


def test_fail_fast_cancels_unfinished_siblings_only(conn: Conn) -> None:
    _, ids = make_task(conn)
    for name in ("w_001", "w_002", "w_003"):
        start(conn, ids[name])
    conn.execute("SELECT tasker.transition_step_v1(%s, ARRAY['in_progress'],"
                 " 'enqueue_for_orchestration')", (ids["w_003"],))  # finished, not applied
    row = conn.execute("SELECT tasker.cancel_batch_siblings_v1(%s, %s) AS n",
                       (ids["w_001"], Jsonb({"reason": "fail_fast"}))).fetchone()
    assert row is not None
    assert row["n"] == 2
    assert state(conn, ids["w_001"]) == "in_progress"  # the failed one itself is untouched
    assert state(conn, ids["w_002"]) == "cancelled"  # running
    assert state(conn, ids["w_004"]) == "cancelled"  # never started
    assert state(conn, ids["w_003"]) == "enqueued_for_orchestration"
    assert state(conn, ids["p"]) == "pending"  # not a sibling


def _stalled(conn: Conn, minutes: float, ahead: timedelta) -> list[str]:
    rows = conn.execute("SELECT step_name FROM tasker.find_stalled_checkpoints_v1(%s, 100,"
                        " now() + %s)", (minutes * 60, ahead)).fetchall()
    return [str(r["step_name"]) for r in rows]


def test_stalled_checkpoints(conn: Conn) -> None:
    _, ids = make_task(conn)
    start(conn, ids["w_001"])
    start(conn, ids["p"])  # not a batch worker: never reported
    assert _stalled(conn, 15, timedelta(minutes=1)) == []
    assert _stalled(conn, 15, timedelta(minutes=16)) == ["w_001"]
    # progress moves the clock: a checkpoint 20 minutes from now
    conn.execute("UPDATE tasker.workflow_steps SET checkpoint = jsonb_build_object("
                 "'cursor', 5, 'items_processed', 5, 'timestamp', now() + interval '20 minutes')"
                 " WHERE workflow_step_uuid = %s", (ids["w_001"],))
    assert _stalled(conn, 15, timedelta(minutes=30)) == []
    rows = conn.execute("SELECT * FROM tasker.find_stalled_checkpoints_v1(60, 100,"
                        " now() + interval '40 minutes')").fetchall()
    assert len(rows) == 1
    assert rows[0]["cursor"] == 5
    assert rows[0]["items_processed"] == 5
    assert 1190 < rows[0]["stalled_seconds"] < 1210


async def test_monitor_reports_each_stall_once(db: Database, db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True, row_factory=psycopg.rows.dict_row) as conn:
        _, ids = make_task(conn)
        start(conn, ids["w_002"])
        conn.execute("UPDATE tasker.workflow_steps SET last_attempted_at = now() - interval"
                     " '1 hour' WHERE workflow_step_uuid = %s", (ids["w_002"],))
    monitor = CheckpointStallMonitor(db=db, settings=BatchSettings(checkpoint_stall_minutes=30))
    first = await monitor.scan()
    assert [s.step_name for s in first] == ["w_002"]
    await monitor.scan()
    assert monitor.statistics().stalls_detected == 1
    assert monitor.statistics().stalled_now == 1
    found = await db.run(find_stalled_checkpoints, stall_minutes=90)
    assert found == []
