"""The dashboard's reads: task pages and counts, a task's drawn DAG with its diagnosis, one
step's details, and the operations view (each one pipelined round trip or two)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from tasker_gateway.ui.diagnose import QueueFacts, StepFacts, TaskFacts, diagnose
from tasker_gateway.ui.layout import place
from tasker_gateway.usecases.views import dag_order
from tasker_shared.contracts.queues import worker_queue
from tasker_shared.db.database import Conn
from tasker_shared.errors import NotFoundError
from tasker_shared.runtime.settings import StalenessSettings

Row = dict[str, Any]
CLAIM_WINDOW_SECONDS = 600.0  # "no worker has claimed ... in the last 10 minutes"


@dataclass(frozen=True, kw_only=True, slots=True)
class TaskFilters:
    namespace: str | None = None
    name: str | None = None
    state: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    correlation_id: UUID | None = None


def task_page(conn: Conn, f: TaskFilters, before: UUID | None, limit: int) -> Row:
    """One page, newest first, and the cursor of the next page (None on the last)."""
    found = conn.execute(
        "SELECT task_uuid FROM tasker.ui_list_tasks_v1(%s, %s, %s, %s, %s, %s, %s, %s)",
        (f.namespace, f.name, f.state, f.created_from, f.created_to, f.correlation_id, before,
         limit + 1)).fetchall()
    ids = [r["task_uuid"] for r in found[:limit]]
    with conn.pipeline():
        rows = conn.execute("SELECT * FROM tasker.get_task_rows_v1(%s::uuid[])", (ids,))
        contexts = conn.execute(
            "SELECT task_uuid, total_steps, completed_steps, failed_steps, completion_percentage"
            " FROM tasker.get_task_execution_contexts_batch_v1(%s::uuid[])", (ids,))
    by_task = {r["task_uuid"]: r for r in rows.fetchall()}
    progress = {r["task_uuid"]: r for r in contexts.fetchall()}
    tasks = []
    for task_uuid in ids:
        row = by_task.get(task_uuid)
        if row is None:
            continue
        ctx = progress.get(task_uuid, {})
        tasks.append({
            "task_uuid": task_uuid, "namespace": row["namespace"], "name": row["name"],
            "version": row["version"], "state": row["status"], "created_at": row["created_at"],
            "updated_at": row["updated_at"], "completed_at": row["completed_at"],
            "correlation_id": row["correlation_id"], "initiator": row["initiator"],
            "total_steps": ctx.get("total_steps"), "completed_steps": ctx.get("completed_steps"),
            "failed_steps": ctx.get("failed_steps"),
            "completion_percentage": ctx.get("completion_percentage")})
    return {"tasks": tasks, "next_before": ids[-1] if len(found) > limit else None}


def state_counts(conn: Conn, f: TaskFilters) -> dict[str, int]:
    rows = conn.execute(
        "SELECT state, tasks FROM tasker.ui_task_state_counts_v1(%s, %s, %s, %s, %s)",
        (f.namespace, f.name, f.created_from, f.created_to, f.correlation_id)).fetchall()
    return {r["state"]: int(r["tasks"]) for r in rows}


def queue_facts(row: Row, window: float) -> QueueFacts:
    return QueueFacts(queue_name=row["queue_name"], waiting=int(row["waiting"]),
                      in_flight=int(row["in_flight"]),
                      oldest_waiting_seconds=float(row["oldest_waiting_seconds"]),
                      oldest_unread_seconds=float(row["oldest_unread_seconds"]),
                      claims=int(row["claims"]), last_claim_at=row["last_claim_at"],
                      window_seconds=window)


def task_graph(conn: Conn, task_uuid: UUID, staleness: StalenessSettings,
               window: float = CLAIM_WINDOW_SECONDS) -> Row:
    """The task, its steps placed for drawing, its edges and why it is (not) moving."""
    ids = [task_uuid]
    with conn.pipeline():
        task_q = conn.execute("SELECT * FROM tasker.get_task_rows_v1(%s::uuid[])", (ids,))
        facts_q = conn.execute(
            "SELECT * FROM tasker.ui_task_facts_v1(%s, %s::numeric, %s::numeric, %s::numeric,"
            " %s::numeric)",
            (task_uuid, staleness.waiting_for_dependencies_minutes,
             staleness.waiting_for_retry_minutes, staleness.steps_in_process_minutes,
             staleness.task_max_lifetime_hours))
        ready_q = conn.execute(
            "SELECT * FROM tasker.get_step_readiness_status_batch_v1(%s::uuid[], NULL)", (ids,))
        edges_q = conn.execute("SELECT * FROM tasker.get_step_edges_v1(%s::uuid[])", (ids,))
        steps_q = conn.execute("SELECT * FROM tasker.ui_step_facts_v1(%s)", (task_uuid,))
    task, facts = task_q.fetchone(), facts_q.fetchone()
    if task is None or facts is None:
        raise NotFoundError(f"task {task_uuid} not found")
    readiness, edges = ready_q.fetchall(), edges_q.fetchall()
    extra = {r["workflow_step_uuid"]: r for r in steps_q.fetchall()}
    queue_row = conn.execute("SELECT * FROM tasker.ui_queue_activity_v1(%s, %s::numeric)",
                             (worker_queue(facts["namespace"]), window)).fetchone()
    parents: dict[UUID, list[UUID]] = {}
    for edge in edges:
        parents.setdefault(edge["to_step_uuid"], []).append(edge["from_step_uuid"])
    readiness = dag_order(readiness, parents)
    names = {r["workflow_step_uuid"]: r["name"] for r in readiness}
    spots = place([r["workflow_step_uuid"] for r in readiness], names, parents)
    now = datetime.now(UTC)
    steps, step_facts = [], []
    for r in readiness:
        uuid = r["workflow_step_uuid"]
        more = extra.get(uuid, {})
        spot = spots[uuid]
        steps.append({"uuid": uuid, "name": r["name"], "state": r["current_state"],
                      "attempts": r["attempts"], "max_attempts": r["max_attempts"],
                      "ready": r["ready_for_execution"], "next_retry_at": r["next_retry_at"],
                      "layer": spot.layer, "row": spot.row, "column": spot.column,
                      "error": more.get("error_message")})
        step_facts.append(StepFacts(
            uuid=uuid, name=r["name"], state=r["current_state"],
            state_since=more.get("state_since") or now, attempts=r["attempts"] or 0,
            max_attempts=r["max_attempts"] or 0, retry_eligible=r["retry_eligible"],
            ready=r["ready_for_execution"], next_retry_at=r["next_retry_at"],
            claimed_until=more.get("claimed_until"), error=more.get("error_message")))
    task_facts = TaskFacts(
        state=facts["state"], state_since=facts["state_since"], namespace=facts["namespace"],
        created_at=facts["task_created_at"], threshold_minutes=float(facts["threshold_minutes"]),
        max_lifetime_minutes=float(facts["max_lifetime_minutes"]), watched=facts["watched"],
        dlq_reason=facts["dlq_reason"])
    found = diagnose(task_facts, step_facts, parents,
                     queue_facts(queue_row, window) if queue_row else None, now)
    return {
        "task": {"task_uuid": task_uuid, "namespace": task["namespace"], "name": task["name"],
                 "version": task["version"], "state": task["status"],
                 "state_since": facts["state_since"], "created_at": task["created_at"],
                 "completed_at": task["completed_at"], "correlation_id": task["correlation_id"],
                 "initiator": task["initiator"], "context": task["context"],
                 "dlq_entry_uuid": facts["dlq_entry_uuid"], "dlq_reason": facts["dlq_reason"]},
        "steps": steps,
        "edges": [[e["from_step_uuid"], e["to_step_uuid"]] for e in edges],
        "diagnosis": asdict(found),
    }


def step_detail(conn: Conn, task_uuid: UUID, step_uuid: UUID) -> Row:
    """Inputs, results (error and traceback included), checkpoint, progress, transitions,
    audit."""
    with conn.pipeline():
        row_q = conn.execute(
            "SELECT * FROM tasker.get_step_rows_v1(%s::uuid[], %s::uuid[])",
            ([task_uuid], [step_uuid]))
        ready_q = conn.execute(
            "SELECT * FROM tasker.get_step_readiness_status_batch_v1(%s::uuid[], %s::uuid[])",
            ([task_uuid], [step_uuid]))
        cp_q = conn.execute(
            "SELECT checkpoint, progress FROM tasker.workflow_steps"
            " WHERE workflow_step_uuid = %s AND task_uuid = %s", (step_uuid, task_uuid))
        trans_q = conn.execute("SELECT * FROM tasker.ui_step_transitions_v1(%s, %s)",
                               (task_uuid, step_uuid))
    row, ready, cp = row_q.fetchone(), ready_q.fetchone(), cp_q.fetchone()
    if row is None or ready is None or cp is None:
        raise NotFoundError(f"step {step_uuid} not found in task {task_uuid}")
    audit = conn.execute("SELECT * FROM tasker.get_step_audit_v1(%s, %s)",
                         (task_uuid, step_uuid)).fetchall()
    results = row["results"]
    error = results.get("error") if isinstance(results, dict) else None
    return {
        "uuid": step_uuid, "name": ready["name"], "state": ready["current_state"],
        "attempts": ready["attempts"], "max_attempts": ready["max_attempts"],
        "retryable": row["retryable"], "ready": ready["ready_for_execution"],
        "dependencies_satisfied": ready["dependencies_satisfied"],
        "next_retry_at": ready["next_retry_at"], "last_failure_at": ready["last_failure_at"],
        "inputs": row["inputs"], "results": results,
        "error": error if isinstance(error, dict) else None,
        "checkpoint": cp["checkpoint"],
        "progress": cp["progress"],  # the handler's latest heartbeat report
        "transitions": trans_q.fetchall(),
        "audit": [{k: a[k] for k in ("recorded_at", "worker_uuid", "success",
                                     "execution_time_ms", "from_state", "to_state",
                                     "transition_metadata")} for a in audit],
    }


def operations(conn: Conn, minutes: int, window: float = CLAIM_WINDOW_SECONDS) -> Row:
    """Worker queues with their activity, and per-minute throughput and latency."""
    with conn.pipeline():
        queues = conn.execute("SELECT * FROM tasker.ui_queue_activity_v1(NULL, %s::numeric)",
                              (window,))
        series = conn.execute("SELECT * FROM tasker.ui_throughput_v1(%s)", (minutes,))
    return {"window_seconds": window, "queues": queues.fetchall(), "series": series.fetchall()}
