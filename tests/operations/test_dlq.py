"""DLQ investigations through the store API the gateway serves (SPEC §6.4): life cycle,
one open entry per task, investigation queue priority, statistics, validation."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tasker_shared.db.database import Database
from tasker_shared.errors import ConflictError, NotFoundError, ValidationError
from tasker_shared.store import dlq
from tests.operations.ops_support import Conn, detect, make_task, make_template, put_in_state


@pytest.fixture
def template(conn: Conn) -> Any:
    return make_template(conn, "dlq_flow", namespace="billing")


def _stale(conn: Conn, template: Any, minutes: float = 90) -> Any:
    task = make_task(conn, template, "dlq_flow")
    put_in_state(conn, task, "waiting_for_dependencies", minutes_ago=minutes)
    return task


def test_life_cycle(conn: Conn, template: Any) -> None:
    task = _stale(conn, template)
    detect(conn)
    entry = dlq.entry_by_task(conn, task)
    assert entry is not None
    assert entry["dlq_reason"] == "staleness_timeout"
    assert entry["resolution_status"] == "pending"
    assert entry["original_state"] == "waiting_for_dependencies"
    assert entry["task_snapshot"]["task_name"] == "dlq_flow"
    assert entry["resolution_timestamp"] is None

    queue = dlq.investigation_queue(conn, limit=10)
    assert [q["dlq_entry_uuid"] for q in queue] == [entry["dlq_entry_uuid"]]
    assert queue[0]["namespace_name"] == "billing"
    assert queue[0]["priority_score"] == pytest.approx(100 + queue[0]["minutes_in_dlq"])
    assert [e["dlq_entry_uuid"] for e in dlq.list_entries(
        conn, resolution_status="pending", limit=10, offset=0)] == [entry["dlq_entry_uuid"]]

    # Investigating: a note, status unchanged.
    noted = dlq.update_investigation(conn, entry["dlq_entry_uuid"], resolution_status=None,
                                     resolution_notes="upstream API was down",
                                     resolved_by="alice", metadata={"ticket": "OPS-1"})
    assert noted["resolution_status"] == "pending"
    assert noted["resolution_timestamp"] is None
    assert noted["resolution_notes"] == "upstream API was down"
    # Resolving records who and why.
    done = dlq.update_investigation(conn, entry["dlq_entry_uuid"],
                                    resolution_status="manually_resolved",
                                    resolution_notes="steps reset and re-run",
                                    resolved_by="bob", metadata=None)
    assert done["resolution_status"] == "manually_resolved"
    assert done["resolved_by"] == "bob"
    assert done["resolution_notes"] == "steps reset and re-run"
    assert done["resolution_timestamp"] is not None
    assert done["metadata"]["ticket"] == "OPS-1"
    history = done["metadata"]["history"]
    assert [(h["to_status"], h.get("by")) for h in history] == [
        ("pending", "alice"), ("manually_resolved", "bob")]
    assert dlq.investigation_queue(conn, limit=10) == []
    assert dlq.list_entries(conn, resolution_status="pending", limit=10, offset=0) == []

    [stats] = dlq.stats(conn)
    assert stats["dlq_reason"] == "staleness_timeout"
    assert (stats["total_entries"], stats["pending"], stats["manually_resolved"]) == (1, 0, 1)
    assert stats["avg_resolution_time_minutes"] is not None

    # With no open entry, a new one may be opened (history is kept).
    again = dlq.create_manual_entry(conn, task, reason="manual_dlq", notes="second look")
    assert again["dlq_reason"] == "manual_dlq"
    assert again["original_state"] == "error"
    assert again["metadata"]["detection_method"] == "manual"
    assert len(dlq.list_entries(conn, resolution_status=None, limit=10, offset=0)) == 2
    latest = dlq.entry_by_task(conn, task)
    assert latest is not None and latest["dlq_entry_uuid"] == again["dlq_entry_uuid"]


def test_investigation_queue_orders_by_priority(conn: Conn, template: Any) -> None:
    stale = _stale(conn, template)
    detect(conn)
    retries = make_task(conn, template, "dlq_flow")
    cycle = make_task(conn, template, "dlq_flow")
    manual = make_task(conn, template, "dlq_flow")
    dlq.create_manual_entry(conn, retries, reason="max_retries_exceeded", notes=None)
    dlq.create_manual_entry(conn, cycle, reason="dependency_cycle_detected", notes=None)
    dlq.create_manual_entry(conn, manual, reason="manual_dlq", notes=None)
    conn.execute("UPDATE tasker.tasks_dlq SET dlq_timestamp = now() - interval '600 minutes'"
                 " WHERE task_uuid = %s", (manual,))
    order = [q["task_uuid"] for q in dlq.investigation_queue(conn, limit=10)]
    assert order == [cycle, manual, retries, stale]  # 1000, 10+600, 500, 100
    assert len(dlq.investigation_queue(conn, limit=2)) == 2
    reasons = {s["dlq_reason"]: s["total_entries"] for s in dlq.stats(conn)}
    assert reasons == {"staleness_timeout": 1, "max_retries_exceeded": 1,
                       "dependency_cycle_detected": 1, "manual_dlq": 1}


def test_paging_and_filters(conn: Conn, template: Any) -> None:
    tasks = [make_task(conn, template, "dlq_flow") for _ in range(5)]
    ids = [dlq.create_manual_entry(conn, t, reason="worker_unavailable", notes=None)
           ["dlq_entry_uuid"] for t in tasks]
    dlq.update_investigation(conn, ids[0], resolution_status="cancelled", resolution_notes=None,
                             resolved_by="ops", metadata=None)
    dlq.update_investigation(conn, ids[1], resolution_status="permanently_failed",
                             resolution_notes=None, resolved_by="ops", metadata=None)
    page1 = dlq.list_entries(conn, resolution_status=None, limit=3, offset=0)
    page2 = dlq.list_entries(conn, resolution_status=None, limit=3, offset=3)
    assert len(page1) == 3 and len(page2) == 2
    assert {e["dlq_entry_uuid"] for e in page1 + page2} == set(ids)
    assert [e["dlq_entry_uuid"] for e in dlq.list_entries(
        conn, resolution_status="cancelled", limit=10, offset=0)] == [ids[0]]
    [stats] = dlq.stats(conn)
    assert (stats["pending"], stats["cancelled"], stats["permanent_failures"]) == (3, 1, 1)


def test_validation_and_not_found(conn: Conn, template: Any) -> None:
    task = make_task(conn, template, "dlq_flow")
    with pytest.raises(ValidationError, match="resolution_status"):
        dlq.list_entries(conn, resolution_status="fixed", limit=10, offset=0)
    with pytest.raises(ValidationError, match="limit"):
        dlq.list_entries(conn, resolution_status=None, limit=0, offset=0)
    with pytest.raises(ValidationError, match="offset"):
        dlq.list_entries(conn, resolution_status=None, limit=5, offset=-1)
    with pytest.raises(ValidationError, match="reason"):
        dlq.create_manual_entry(conn, task, reason="bored", notes=None)
    with pytest.raises(ValidationError):
        dlq.update_investigation(conn, uuid.uuid4(), resolution_status="done",
                                 resolution_notes=None, resolved_by=None, metadata=None)
    with pytest.raises(NotFoundError):
        dlq.update_investigation(conn, uuid.uuid4(), resolution_status="cancelled",
                                 resolution_notes=None, resolved_by=None, metadata=None)
    with pytest.raises(NotFoundError):
        dlq.entry(conn, uuid.uuid4())
    assert dlq.entry_by_task(conn, task) is None


async def test_one_open_entry_per_task(db: Database, conn: Conn, template: Any) -> None:
    task = make_task(conn, template, "dlq_flow")
    first = await db.run(dlq.create_manual_entry, task, reason="manual_dlq", notes="a")
    with pytest.raises(ConflictError):
        await db.run(dlq.create_manual_entry, task, reason="manual_dlq", notes="b")
    with pytest.raises(NotFoundError):
        await db.run(dlq.create_manual_entry, uuid.uuid4(), reason="manual_dlq", notes=None)
    await db.run(dlq.update_investigation, first["dlq_entry_uuid"],
                 resolution_status="cancelled", resolution_notes=None, resolved_by="ops",
                 metadata=None)
    second = await db.run(dlq.create_manual_entry, task, reason="manual_dlq", notes="c")
    # Re-opening the first while the second is open breaks the one-open rule.
    with pytest.raises(ConflictError):
        await db.run(dlq.update_investigation, first["dlq_entry_uuid"],
                     resolution_status="pending", resolution_notes=None, resolved_by=None,
                     metadata=None)
    assert second["resolution_status"] == "pending"


def test_staleness_monitoring_store(conn: Conn, template: Any) -> None:
    warm = make_task(conn, template, "dlq_flow")
    put_in_state(conn, warm, "waiting_for_retry", minutes_ago=25)
    rows = dlq.staleness_monitoring(conn, limit=10)
    assert [(r["task_uuid"], r["health_status"], r["staleness_threshold_minutes"])
            for r in rows] == [(warm, "warning", 30)]
    tight = dlq.staleness_monitoring(conn, limit=10, waiting_for_retry_minutes=20)
    assert tight[0]["health_status"] == "stale"
    assert isinstance(rows[0]["time_in_state_minutes"], float)
