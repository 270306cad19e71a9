"""Task creation: the initial step set, edges and first transitions in one transaction."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from psycopg.types.json import Jsonb

from tasker_shared.contracts.payloads import TaskRequest
from tasker_shared.db.database import Conn
from tasker_shared.domain.dynamic import step_row
from tasker_shared.domain.identity import identity_hash
from tasker_shared.domain.template import TaskTemplate, initial_step_names
from tasker_shared.runtime.metrics import TRANSITIONS

DUPLICATE_REASON = "a task with the same identity already exists"

# evaluate_task_v1 actions that moved the task (the metric counts the state it ended in).
_MOVED = frozenset({"enqueued", "completed", "blocked", "error", "waiting_for_retry",
                    "waiting_for_dependencies"})


@dataclass(frozen=True, kw_only=True, slots=True)
class StepPlan:
    steps: list[dict[str, Any]]
    edges: list[dict[str, str]]


def plan_initial_steps(template: TaskTemplate) -> StepPlan:
    """Rows and edges of the steps created with the task (SPEC §4.3)."""
    names = initial_step_names(template)
    chosen = set(names)
    steps = [step_row(template.step(name)) for name in names]
    edges = [
        {"from": dep, "to": name, "name": "provides"}
        for name in names
        for dep in template.step(name).dependencies
        if dep in chosen
    ]
    return StepPlan(steps=steps, edges=edges)


def task_identity(template: TaskTemplate, named_task_uuid: UUID, request: TaskRequest) -> str:
    return identity_hash(
        strategy=str(template.identity_strategy),
        named_task_uuid=named_task_uuid,
        context=request.context,
        idempotency_key=request.idempotency_key,
        new_uuid=uuid.uuid4,
    )


def create_task(
    conn: Conn,
    *,
    named_task_uuid: UUID,
    template: TaskTemplate,
    request: TaskRequest,
    identity: str,
) -> UUID | None:
    """Create the task with its initial steps; None when the identity already exists."""
    row = conn.execute(
        "SELECT tasker.create_task_v1(%s::uuid, %s::jsonb, %s::jsonb, %s::jsonb) AS task_uuid",
        _create_params(named_task_uuid, template, request, identity),
    ).fetchone()
    assert row is not None
    value = row["task_uuid"]
    return UUID(str(value)) if value is not None else None


def create_and_start_task(
    conn: Conn,
    *,
    named_task_uuid: UUID,
    template: TaskTemplate,
    request: TaskRequest,
    identity: str,
    processor: UUID | None,
    headers: dict[str, Any] | None = None,
    request_id: str | None = None,
) -> Callable[[], UUID | None]:
    """`create_task`, then `evaluate_task` on the new task (its first steps enqueued) and,
    with `request_id`, the request's outcome (created or duplicate) stored and announced
    (`tasker.announce_request_outcome_v1`): ONE statement, sent now. The returned function
    reads the new task's uuid (None when the identity already exists); in pipeline mode,
    calling it after the COMMIT lets the statement travel with the COMMIT."""
    cursor = conn.execute(
        "WITH c AS MATERIALIZED (SELECT tasker.create_task_v1(%s::uuid, %s::jsonb, %s::jsonb,"
        " %s::jsonb) AS task_uuid), e AS MATERIALIZED (SELECT c.task_uuid, CASE WHEN"
        " c.task_uuid IS NOT NULL THEN tasker.evaluate_task_v1(c.task_uuid, %s::uuid, false,"
        " %s::jsonb) END AS r FROM c)"
        " SELECT e.task_uuid, e.r, CASE WHEN %s::text IS NOT NULL THEN"
        " tasker.announce_request_outcome_v1(%s::text,"
        " CASE WHEN e.task_uuid IS NULL THEN 'duplicate' ELSE 'created' END, e.task_uuid,"
        " CASE WHEN e.task_uuid IS NULL THEN %s END,"
        " CASE WHEN e.task_uuid IS NULL THEN 'conflict' END) END AS announced FROM e",
        (*_create_params(named_task_uuid, template, request, identity), processor,
         Jsonb(headers) if headers else None, request_id, request_id, DUPLICATE_REASON),
    )

    def task_uuid() -> UUID | None:
        row = cursor.fetchone()
        assert row is not None
        if row["task_uuid"] is None:
            return None
        count_evaluation(row["r"])
        return UUID(str(row["task_uuid"]))

    return task_uuid


def _create_params(
    named_task_uuid: UUID, template: TaskTemplate, request: TaskRequest, identity: str
) -> tuple[UUID, Jsonb, Jsonb, Jsonb]:
    plan = plan_initial_steps(template)
    task = {
        "identity_hash": identity,
        "initiator": request.initiator[:128],
        "source_system": request.source_system[:128],
        "reason": request.reason[:128],
        "tags": list(request.tags),
        "context": request.context,
        "priority": request.priority or 0,
        "correlation_id": str(request.correlation_id),
        "parent_correlation_id": (
            str(request.parent_correlation_id) if request.parent_correlation_id else None
        ),
        "requested_at": request.requested_at.isoformat(),
    }
    return named_task_uuid, Jsonb(task), Jsonb(plan.steps), Jsonb(plan.edges)


def evaluate_task(
    conn: Conn,
    task_uuid: UUID,
    *,
    processor: UUID | None,
    finalize: bool,
    headers: dict[str, Any] | None = None,
) -> dict[str, Any] | None:
    """Enqueue ready steps and move the task on (see `tasker.evaluate_task_v1`); None when
    the task does not exist (checked in the same statement)."""
    return evaluate_task_deferred(conn, task_uuid, processor=processor, finalize=finalize,
                                  headers=headers)()


def evaluate_task_deferred(
    conn: Conn,
    task_uuid: UUID,
    *,
    processor: UUID | None,
    finalize: bool,
    headers: dict[str, Any] | None = None,
) -> Callable[[], dict[str, Any] | None]:
    """`evaluate_task`, sent now and read when the returned function is called: in
    pipeline mode the statement then travels with the ones after it (up to the COMMIT)."""
    cursor = conn.execute(
        "SELECT CASE WHEN EXISTS (SELECT 1 FROM tasker.tasks WHERE task_uuid = %(t)s)"
        " THEN tasker.evaluate_task_v1(%(t)s::uuid, %(p)s::uuid, %(f)s::boolean, %(h)s::jsonb)"
        " END AS r",
        {"t": task_uuid, "p": processor, "f": finalize, "h": Jsonb(headers) if headers else None},
    )

    def result() -> dict[str, Any] | None:
        row = cursor.fetchone()
        assert row is not None
        value: dict[str, Any] | None = row["r"]
        if value is not None:
            count_evaluation(value)
        return value

    return result


def count_evaluation(result: dict[str, Any]) -> None:
    """Count the task transition an `evaluate_task_v1` result reports, if it moved the task."""
    if result.get("action") in _MOVED:
        TRANSITIONS.labels("task", str(result.get("state"))).inc()
