"""Reading task and step views: small queries (task rows, the execution-context and readiness
functions, step rows, edges) assembled here, all inside one transaction.

Steps are listed in DAG order: by dependency level (longest path from a root), then name.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar
from uuid import UUID

from tasker_gateway.models.common import ApiModel
from tasker_gateway.models.steps import StepView
from tasker_gateway.models.tasks import StepReadinessView, TaskView
from tasker_shared.db.database import Conn
from tasker_shared.errors import NotFoundError

M = TypeVar("M", bound=ApiModel)
Row = dict[str, Any]

_TASKS = "SELECT * FROM tasker.get_task_rows_v1(%s::uuid[])"
_CONTEXTS = "SELECT * FROM tasker.get_task_execution_contexts_batch_v1(%s::uuid[])"
_READINESS = "SELECT * FROM tasker.get_step_readiness_status_batch_v1(%s::uuid[], %s::uuid[])"
_STEP_ROWS = "SELECT * FROM tasker.get_step_rows_v1(%s::uuid[], %s::uuid[])"
_EDGES = "SELECT * FROM tasker.get_step_edges_v1(%s::uuid[])"


def pick(model: type[M], row: Row, **extra: Any) -> M:
    """`model` from the row's columns named like its fields (plus `extra`)."""
    values = {name: row[name] for name in model.model_fields if name not in extra}
    values.update(extra)
    return model(**values)


@dataclass(kw_only=True, slots=True)
class TaskData:
    """The rows describing one task: task row, execution context, readiness of its steps."""

    row: Row
    context: Row
    steps: list[Row] = field(default_factory=list)  # readiness rows, DAG order
    parents: dict[UUID, list[UUID]] = field(default_factory=dict)
    step_rows: dict[UUID, Row] = field(default_factory=dict)  # with `with_rows` only


def dag_order(steps: list[Row], parents: dict[UUID, list[UUID]]) -> list[Row]:
    """`steps` sorted by dependency level, then name."""
    levels: dict[UUID, int] = {}

    def level(step: UUID, depth: int = 0) -> int:
        if step not in levels:
            above = [level(p, depth + 1) for p in parents.get(step, ()) if depth < 200]
            levels[step] = 1 + max(above) if above else 0
        return levels[step]

    return sorted(steps, key=lambda s: (level(s["workflow_step_uuid"]), s["name"]))


def load(conn: Conn, task_uuids: Sequence[UUID], step_uuids: Sequence[UUID] | None = None,
         *, with_rows: bool = False) -> dict[UUID, TaskData]:
    """The rows of the tasks that exist; the queries go out in one pipeline (one round trip)."""
    ids, steps = list(task_uuids), list(step_uuids) if step_uuids else None
    with conn.pipeline():
        tasks = conn.execute(_TASKS, (ids,))
        contexts = conn.execute(_CONTEXTS, (ids,))
        readiness = conn.execute(_READINESS, (ids, steps))
        edges = conn.execute(_EDGES, (ids,))
        rows = conn.execute(_STEP_ROWS, (ids, steps)) if with_rows else None
    by_task = {r["task_uuid"]: r for r in contexts.fetchall()}
    data = {r["task_uuid"]: TaskData(row=r, context=by_task[r["task_uuid"]])
            for r in tasks.fetchall()}
    for step in readiness.fetchall():
        data[step["task_uuid"]].steps.append(step)
    for edge in edges.fetchall():
        data[edge["task_uuid"]].parents.setdefault(edge["to_step_uuid"], []).append(
            edge["from_step_uuid"])
    for row in rows.fetchall() if rows is not None else ():
        data[row["task_uuid"]].step_rows[row["workflow_step_uuid"]] = row
    for item in data.values():
        item.steps = dag_order(item.steps, item.parents)
    return data


def to_task_view(item: TaskData) -> TaskView:
    steps = [pick(StepReadinessView, s) for s in item.steps]
    context = {k: v for k, v in item.context.items() if k != "status"}
    return pick(TaskView, {**item.row, **context}, tags=list(item.row["tags"] or []),
                steps=steps)


def task_views(conn: Conn, task_uuids: Sequence[UUID]) -> list[TaskView]:
    """Views of the tasks that exist, in the order asked."""
    data = load(conn, task_uuids)
    return [to_task_view(data[u]) for u in task_uuids if u in data]


def task_view(conn: Conn, task_uuid: UUID) -> TaskView:
    views = task_views(conn, [task_uuid])
    if not views:
        raise NotFoundError(f"task {task_uuid} not found")
    return views[0]


def require_task(conn: Conn, task_uuid: UUID) -> None:
    row = conn.execute("SELECT 1 FROM tasker.tasks WHERE task_uuid = %s", (task_uuid,)).fetchone()
    if row is None:
        raise NotFoundError(f"task {task_uuid} not found")


def step_views(conn: Conn, task_uuid: UUID, step_uuids: Sequence[UUID] | None = None
               ) -> list[StepView]:
    data = load(conn, [task_uuid], step_uuids, with_rows=True).get(task_uuid)
    if data is None:
        return []
    return [pick(StepView, {**data.step_rows[s["workflow_step_uuid"]], **s}) for s in data.steps]


def step_view(conn: Conn, task_uuid: UUID, step_uuid: UUID) -> StepView:
    views = step_views(conn, task_uuid, [step_uuid])
    if not views:
        require_task(conn, task_uuid)
        raise NotFoundError(f"step {step_uuid} not found in task {task_uuid}")
    return views[0]
