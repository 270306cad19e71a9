"""SQL calls of the worker (plain functions on a connection, run via `Database.run`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from psycopg.types.json import Jsonb

from tasker_shared.db.database import Conn


@dataclass(frozen=True, kw_only=True, slots=True)
class ClaimedStep:
    queue: str
    msg_id: int
    task_uuid: UUID
    step_uuid: UUID
    correlation_id: UUID
    step_name: str
    attempt: int
    max_attempts: int
    inputs: dict[str, Any]
    checkpoint: dict[str, Any] | None
    task_context: dict[str, Any]
    namespace: str
    task_name: str
    task_version: str
    named_task_uuid: UUID
    dependency_results: dict[str, Any]
    headers: dict[str, Any] | None


def claim_steps(
    conn: Conn,
    queue: str,
    ids: list[int] | None,
    limit: int,
    *,
    visibility_seconds: float,
    worker_id: str,
    max_reads: int,
) -> list[ClaimedStep]:
    rows = conn.execute(
        "SELECT * FROM tasker.claim_steps_v1(%s::text, %s::bigint[], %s::int, %s::numeric, %s::text, %s::int)",
        (queue, ids, limit, visibility_seconds, worker_id, max_reads),
    ).fetchall()
    return [
        ClaimedStep(
            queue=queue,
            msg_id=r["msg_id"],
            task_uuid=r["task_uuid"],
            step_uuid=r["step_uuid"],
            correlation_id=r["correlation_id"],
            step_name=r["step_name"],
            attempt=r["attempts"],
            max_attempts=r["max_attempts"],
            inputs=r["inputs"] or {},
            checkpoint=r["checkpoint"],
            task_context=r["task_context"] or {},
            namespace=r["namespace"],
            task_name=r["task_name"],
            task_version=r["task_version"],
            named_task_uuid=r["named_task_uuid"],
            dependency_results=r["dependency_results"] or {},
            headers=r["headers"],
        )
        for r in rows
    ]


def record_result(
    conn: Conn, step: ClaimedStep, *, success: bool, results: dict[str, Any], worker_id: str
) -> str:
    """Store the result, move the step on, delete its message, notify result processing."""
    row = conn.execute(
        "SELECT tasker.record_step_result_v1(%s::text, %s::bigint, %s::uuid, %s::int, %s::boolean, %s::jsonb, %s::text, %s::jsonb) AS outcome",
        (step.queue, step.msg_id, step.step_uuid, step.attempt, success, Jsonb(results),
         worker_id, Jsonb(step.headers) if step.headers else None),
    ).fetchone()
    return str(row["outcome"]) if row else "stale"


def save_checkpoint(
    conn: Conn, step: ClaimedStep, *, cursor: Any, items_processed: int,
    accumulated: Any,
) -> dict[str, Any] | None:
    conn.execute(
        "SELECT tasker.save_checkpoint_v1(%s::uuid, %s::int, %s::jsonb, %s::bigint, %s::jsonb)",
        (step.step_uuid, step.attempt, Jsonb(cursor), items_processed, Jsonb(accumulated)),
    )
    row = conn.execute("SELECT checkpoint FROM tasker.workflow_steps WHERE workflow_step_uuid = %s",
                       (step.step_uuid,)).fetchone()
    return row["checkpoint"] if row else None


def extend_visibility(conn: Conn, by_queue: dict[str, list[int]], seconds: float) -> int:
    total = 0
    for queue, ids in by_queue.items():
        row = conn.execute("SELECT tasker.extend_visibility_v1(%s::text, %s::bigint[], %s::numeric) AS n",
                           (queue, ids, seconds)).fetchone()
        total += int(row["n"]) if row else 0
    return total
