"""Reading task and step views: one plain function per read, run in one transaction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar
from uuid import UUID

from tasker_gateway.models.common import ApiModel
from tasker_gateway.models.steps import StepView
from tasker_gateway.models.tasks import StepReadinessView, TaskView
from tasker_shared.db.database import Conn
from tasker_shared.errors import NotFoundError

M = TypeVar("M", bound=ApiModel)

_TASK_VIEWS = "SELECT * FROM tasker.get_task_views_v1(%s::uuid[])"
_STEP_VIEWS = "SELECT * FROM tasker.get_step_views_v1(%s::uuid[], %s::uuid[])"


def pick(model: type[M], row: dict[str, Any], **extra: Any) -> M:
    """`model` from the row's columns named like its fields (plus `extra`)."""
    values = {name: row[name] for name in model.model_fields if name not in extra}
    values.update(extra)
    return model(**values)


def task_views(conn: Conn, task_uuids: Sequence[UUID]) -> list[TaskView]:
    """Views of the tasks that exist, in the order asked."""
    ids = list(task_uuids)
    if not ids:
        return []
    rows = conn.execute(_TASK_VIEWS, (ids,)).fetchall()
    steps: dict[UUID, list[StepReadinessView]] = {u: [] for u in ids}
    for step in conn.execute(_STEP_VIEWS, (ids, None)).fetchall():
        steps[step["task_uuid"]].append(pick(StepReadinessView, step))
    found = {row["task_uuid"]: pick(TaskView, row, tags=list(row["tags"] or []),
                                    steps=steps[row["task_uuid"]]) for row in rows}
    return [found[u] for u in ids if u in found]


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
    rows = conn.execute(_STEP_VIEWS, ([task_uuid], list(step_uuids) if step_uuids else None)
                        ).fetchall()
    return [pick(StepView, row) for row in rows]


def step_view(conn: Conn, task_uuid: UUID, step_uuid: UUID) -> StepView:
    views = step_views(conn, task_uuid, [step_uuid])
    if not views:
        require_task(conn, task_uuid)
        raise NotFoundError(f"step {step_uuid} not found in task {task_uuid}")
    return views[0]
