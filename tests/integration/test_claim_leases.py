"""Step claims are leases the database knows (migration 0017), through the worker's own call
sites on a real PostgreSQL with PGMQ: a duplicate message for a running step starts nothing
and is consumed; only an expired lease (a dead or stalled worker) lets the step be
re-claimed; the heartbeat extends the lease; a step whose worker died always comes back."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import psycopg
import pytest
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from tasker_worker.runtime.claims import (
    ClaimedStep,
    StepOutcome,
    claim_steps,
    extend_visibility,
    record_results,
)
from tests.integration.dag_support import make_task, named_task

Conn = psycopg.Connection[dict[str, Any]]
NS = "leases"
QUEUE = f"worker_{NS}_queue"
VT = 30.0


def _enqueued_step(conn: Conn, *, max_attempts: int = 3) -> UUID:
    """A one-step task of namespace `leases` whose step is enqueued (one message queued)."""
    nt = named_task(conn, name="lease_task", namespace=NS)
    task, steps = make_task(conn, nt, {"a": []},
                            step_options={"a": {"max_attempts": max_attempts}})
    conn.execute("SELECT tasker.evaluate_task_v1(%s)", (task,))
    return steps["a"]


def _claim(conn: Conn, ids: list[int] | None = None, limit: int = 10,
           vt: float = VT) -> list[ClaimedStep]:
    return claim_steps(conn, QUEUE, ids, limit, visibility_seconds=vt, worker_id="w-test",
                       max_reads=5)


def _send_duplicate(conn: Conn, step: ClaimedStep) -> int:
    row = conn.execute("SELECT tasker.send_v1(%s, %s) AS id", (QUEUE, Jsonb({
        "task_uuid": str(step.task_uuid), "step_uuid": str(step.step_uuid),
        "correlation_id": str(step.correlation_id)}))).fetchone()
    assert row is not None
    return int(row["id"])


def _step(conn: Conn, step: UUID) -> dict[str, Any]:
    row = conn.execute(
        "SELECT tasker.get_current_step_state_v1(ws.workflow_step_uuid) AS state,"
        " ws.attempts, ws.claimed_until, ws.claim_msg_id,"
        " (SELECT count(*) FROM tasker.workflow_step_transitions st"
        "   WHERE st.workflow_step_uuid = ws.workflow_step_uuid"
        "     AND st.to_state = 'in_progress') AS runs"
        " FROM tasker.workflow_steps ws WHERE ws.workflow_step_uuid = %s", (step,)).fetchone()
    assert row is not None
    return row


def _messages(conn: Conn) -> dict[int, dict[str, Any]]:
    rows = conn.execute(f"SELECT msg_id, vt, read_ct FROM pgmq.q_{QUEUE}").fetchall()
    return {int(r["msg_id"]): r for r in rows}


def _worker_dies(conn: Conn, step: UUID) -> None:
    """What time does to a claim whose worker is gone: the lease and the visibility of every
    queued message of the step run out (moved into the past instead of waiting)."""
    conn.execute("UPDATE tasker.workflow_steps SET claimed_until = now() - interval '1 second'"
                 " WHERE workflow_step_uuid = %s", (step,))
    conn.execute(f"UPDATE pgmq.q_{QUEUE} SET vt = now() - interval '1 second'")


def _record(conn: Conn, step: ClaimedStep) -> str:
    outcome = StepOutcome(step=step, success=True, payload={"ok": True}, handler="h",
                          error=None)
    return record_results(conn, [outcome], worker_id="w-test")[0]


@pytest.mark.parametrize("max_attempts", [1, 3])
def test_duplicate_message_of_a_running_step_starts_nothing(conn: Conn,
                                                            max_attempts: int) -> None:
    step_uuid = _enqueued_step(conn, max_attempts=max_attempts)
    [claimed] = _claim(conn)
    assert claimed.attempt == 1
    duplicate = _send_duplicate(conn, claimed)

    assert _claim(conn) == []  # no second run starts (nor is the running one failed)
    state = _step(conn, step_uuid)
    assert (state["state"], state["attempts"], state["runs"]) == ("in_progress", 1, 1)
    assert state["claim_msg_id"] == claimed.msg_id
    queued = _messages(conn)
    assert duplicate not in queued  # the duplicate is consumed
    assert list(queued) == [claimed.msg_id]  # the claim's own message keeps the step alive
    assert queued[claimed.msg_id]["read_ct"] == 1
    assert _record(conn, claimed) == "recorded"  # the healthy run's result counts
    assert _messages(conn) == {}


def test_two_messages_of_an_enqueued_step_in_one_claim_start_one_run(conn: Conn) -> None:
    step_uuid = _enqueued_step(conn)
    [first] = list(_messages(conn))
    conn.execute(f"SELECT tasker.send_v1(%s, message) FROM pgmq.q_{QUEUE}", (QUEUE,))
    claimed = _claim(conn)
    assert [c.msg_id for c in claimed] == [first]
    assert list(_messages(conn)) == [first]
    assert _step(conn, step_uuid)["runs"] == 1


def test_a_step_whose_worker_died_after_a_duplicate_is_reclaimed(conn: Conn) -> None:
    """The duplicate was consumed while the claim was live; the worker then dies. The claim's
    own message brings the step back once the lease has expired, attempts counted, and the
    dead run's late result is refused."""
    step_uuid = _enqueued_step(conn)
    [claimed] = _claim(conn)
    _send_duplicate(conn, claimed)
    assert _claim(conn) == []
    _worker_dies(conn, step_uuid)

    [again] = _claim(conn)
    assert (again.step_uuid, again.msg_id, again.attempt) == (step_uuid, claimed.msg_id, 2)
    state = _step(conn, step_uuid)
    assert (state["state"], state["attempts"], state["runs"]) == ("in_progress", 2, 2)
    reclaim = conn.execute(
        "SELECT metadata ->> 'event' AS event FROM tasker.workflow_step_transitions"
        " WHERE workflow_step_uuid = %s ORDER BY sort_key DESC LIMIT 1", (step_uuid,)).fetchone()
    assert reclaim is not None and reclaim["event"] == "reclaim"
    assert _record(conn, claimed) == "stale"
    assert _record(conn, again) == "recorded"


def test_an_expired_lease_with_max_attempts_one_fails_the_step_as_lost(conn: Conn) -> None:
    step_uuid = _enqueued_step(conn, max_attempts=1)
    _claim(conn)
    _worker_dies(conn, step_uuid)
    assert _claim(conn) == []
    assert _step(conn, step_uuid)["state"] == "enqueued_as_error_for_orchestration"
    assert _messages(conn) == {}


def test_the_claims_own_message_surfacing_early_is_hidden_again_not_run(conn: Conn) -> None:
    step_uuid = _enqueued_step(conn)
    [claimed] = _claim(conn)
    lease = _step(conn, step_uuid)["claimed_until"]
    assert _messages(conn)[claimed.msg_id]["vt"] == lease  # visible exactly when it ends
    conn.execute(f"UPDATE pgmq.q_{QUEUE} SET vt = now() - interval '1 second'")

    assert _claim(conn) == []
    queued = _messages(conn)
    assert queued[claimed.msg_id]["vt"] == lease
    assert queued[claimed.msg_id]["read_ct"] == 1  # not counted as a read
    assert _step(conn, step_uuid)["attempts"] == 1


def test_a_duplicate_takes_the_place_of_a_lost_claim_message(conn: Conn) -> None:
    """With the claim's own message gone, a second message is the step's only way back: it is
    kept (hidden until the lease ends) and becomes the claim's message."""
    step_uuid = _enqueued_step(conn)
    [claimed] = _claim(conn)
    conn.execute(f"DELETE FROM pgmq.q_{QUEUE}")
    duplicate = _send_duplicate(conn, claimed)

    assert _claim(conn) == []
    state = _step(conn, step_uuid)
    assert state["claim_msg_id"] == duplicate
    assert _messages(conn)[duplicate]["vt"] == state["claimed_until"]
    _worker_dies(conn, step_uuid)
    [again] = _claim(conn)
    assert (again.msg_id, again.attempt) == (duplicate, 2)


def test_the_heartbeat_extends_the_lease_with_the_message(conn: Conn) -> None:
    step_uuid = _enqueued_step(conn)
    [claimed] = _claim(conn, vt=5.0)
    conn.execute("UPDATE tasker.workflow_steps SET claimed_until = now() - interval '1 second'"
                 " WHERE workflow_step_uuid = %s", (step_uuid,))
    assert extend_visibility(conn, {QUEUE: [claimed.msg_id]}, 60.0) == 1
    state = _step(conn, step_uuid)
    assert _messages(conn)[claimed.msg_id]["vt"] == state["claimed_until"]
    _send_duplicate(conn, claimed)
    assert _claim(conn) == []  # the extended lease is live: the duplicate starts nothing
    assert _step(conn, step_uuid)["attempts"] == 1


def test_the_heartbeat_adopts_a_replacement_message(conn: Conn) -> None:
    """A worker running a step under another message than the one that claimed it (a
    replacement) keeps the lease with its heartbeat, and that message becomes the claim's."""
    step_uuid = _enqueued_step(conn)
    [claimed] = _claim(conn)
    replacement = _send_duplicate(conn, claimed)
    conn.execute(f"DELETE FROM pgmq.q_{QUEUE} WHERE msg_id = %s", (claimed.msg_id,))
    assert extend_visibility(conn, {QUEUE: [replacement]}, VT) == 1
    assert _step(conn, step_uuid)["claim_msg_id"] == replacement


def test_the_heartbeat_never_waits_on_a_locked_step(conn: Conn, db_url: str) -> None:
    """A step locked by a result being recorded (or a claim) is skipped, not waited for: the
    heartbeat cannot deadlock with either. Its message is extended all the same."""
    step_uuid = _enqueued_step(conn)
    [claimed] = _claim(conn)
    before = _step(conn, step_uuid)["claimed_until"]
    with psycopg.connect(db_url, row_factory=dict_row) as holder:
        holder.execute("SELECT 1 FROM tasker.workflow_steps WHERE workflow_step_uuid = %s"
                       " FOR NO KEY UPDATE", (step_uuid,))
        conn.execute("SET lock_timeout = '3s'")
        assert extend_visibility(conn, {QUEUE: [claimed.msg_id]}, 2 * VT) == 1
        holder.rollback()
    assert _step(conn, step_uuid)["claimed_until"] == before
    assert _messages(conn)[claimed.msg_id]["vt"] > before


def test_a_step_claimed_before_leases_existed_is_reclaimed_as_before(conn: Conn) -> None:
    step_uuid = _enqueued_step(conn)
    _claim(conn)
    conn.execute("UPDATE tasker.workflow_steps SET claimed_until = NULL, claim_msg_id = NULL"
                 " WHERE workflow_step_uuid = %s", (step_uuid,))
    conn.execute(f"UPDATE pgmq.q_{QUEUE} SET vt = now() - interval '1 second'")
    [again] = _claim(conn)
    assert again.attempt == 2


def test_the_heartbeat_ignores_ids_that_are_not_step_messages(conn: Conn) -> None:
    _enqueued_step(conn)
    row = conn.execute("SELECT tasker.send_v1(%s, %s) AS id",
                       (QUEUE, Jsonb({"step_uuid": "not-a-uuid"}))).fetchone()
    assert row is not None
    assert extend_visibility(conn, {QUEUE: [int(row["id"]), 10**12]}, VT) == 1


def test_a_claim_never_waits_on_a_step_being_recorded(conn: Conn, db_url: str) -> None:
    """The deadlock the fault suite found: a step's lease ran out during a database outage
    while its finished result was being recorded. The record holds the step row and then
    deletes the message; a claim that locked the (visible) message and then waited for the
    step row closed the circle, and when the record was the victim the claim re-ran the
    step and the finished result became stale. A claim now leaves a step whose row is
    locked alone, and the result is recorded."""
    step_uuid = _enqueued_step(conn)
    [claimed] = _claim(conn)
    _worker_dies(conn, step_uuid)  # the lease has lapsed: the message is visible again
    with psycopg.connect(db_url, row_factory=dict_row) as recorder:
        recorder.execute("SELECT 1 FROM tasker.workflow_steps WHERE workflow_step_uuid = %s"
                         " FOR NO KEY UPDATE", (step_uuid,))  # the record's first lock
        conn.execute("SET lock_timeout = '3s'")
        assert _claim(conn) == []  # at once: neither a wait nor a second run
        assert _messages(conn)[claimed.msg_id]["read_ct"] == 1  # left as it was
        assert _record(recorder, claimed) == "recorded"
        recorder.commit()
    state = _step(conn, step_uuid)
    assert (state["state"], state["attempts"], state["runs"]) == (
        "enqueued_for_orchestration", 1, 1)
    assert _messages(conn) == {}
