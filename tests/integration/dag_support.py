"""Building tasks, steps, edges and transitions directly in SQL for readiness and state tests."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg
from psycopg.types.json import Jsonb

DictConn = psycopg.Connection[dict[str, Any]]


def named_task(conn: DictConn, name: str = "crafted", namespace: str = "crafted",
               strategy: str = "strict") -> UUID:
    row = conn.execute(
        "SELECT tasker.register_template_v1(%s, %s, '1.0.0', NULL, '{}'::jsonb, %s) AS id",
        (namespace, name, strategy),
    ).fetchone()
    assert row is not None
    return UUID(str(row["id"]))


def make_task(
    conn: DictConn,
    nt: UUID,
    dag: Mapping[str, Sequence[str]],
    *,
    prefix: str | None = None,
    step_options: Mapping[str, Mapping[str, Any]] | None = None,
    priority: int = 0,
) -> tuple[UUID, dict[str, UUID]]:
    """A task whose steps are `dag`'s keys, each depending on the listed parents.

    Step names get a unique prefix (named steps are global). Returns the task and the
    step uuids by their short names.
    """
    prefix = prefix or f"s{uuid.uuid4().hex[:8]}_"
    options = step_options or {}
    steps = [{"name": prefix + name, **options.get(name, {})} for name in dag]
    edges = [{"from": prefix + p, "to": prefix + name} for name, parents in dag.items()
             for p in parents]
    task = {"identity_hash": uuid.uuid4().hex, "correlation_id": str(uuid.uuid4()),
            "priority": priority}
    row = conn.execute(
        "SELECT tasker.create_task_v1(%s, %s, %s, %s) AS t",
        (nt, Jsonb(task), Jsonb(steps), Jsonb(edges)),
    ).fetchone()
    assert row is not None
    assert row["t"] is not None
    task_uuid = UUID(str(row["t"]))
    rows = conn.execute(
        "SELECT ws.workflow_step_uuid AS id, ns.name FROM tasker.workflow_steps ws"
        " JOIN tasker.named_steps ns USING (named_step_uuid) WHERE ws.task_uuid = %s",
        (task_uuid,),
    ).fetchall()
    return task_uuid, {str(r["name"])[len(prefix):]: r["id"] for r in rows}


def force_step_state(conn: DictConn, step: UUID, state: str, *,
                     at: datetime | None = None) -> None:
    """Put `step` into `state` (its row's current state, and a transition row appended),
    bypassing the state machine."""
    conn.execute("UPDATE tasker.workflow_steps SET current_state = %s"
                 " WHERE workflow_step_uuid = %s", (state, step))
    conn.execute(
        "INSERT INTO tasker.workflow_step_transitions"
        " (workflow_step_uuid, from_state, to_state, sort_key, created_at)"
        " SELECT %s, NULL, %s, COALESCE(max(sort_key), 0) + 1, COALESCE(%s, now())"
        " FROM tasker.workflow_step_transitions WHERE workflow_step_uuid = %s",
        (step, state, at, step))


def force_task_state(conn: DictConn, task: UUID, state: str, *,
                     at: datetime | None = None, processor: UUID | None = None) -> None:
    conn.execute(
        "UPDATE tasker.task_transitions SET most_recent = false"
        " WHERE task_uuid = %s AND most_recent", (task,))
    conn.execute(
        "INSERT INTO tasker.task_transitions"
        " (task_uuid, from_state, to_state, sort_key, most_recent, created_at, processor_uuid)"
        " SELECT %s, NULL, %s, COALESCE(max(sort_key), 0) + 1, true, COALESCE(%s, now()), %s"
        " FROM tasker.task_transitions WHERE task_uuid = %s",
        (task, state, at, processor, task))


def set_step(conn: DictConn, step: UUID, **columns: Any) -> None:
    """Set workflow_steps columns (names are test constants, values are parameters)."""
    for column, value in columns.items():
        assert column.isidentifier()
        conn.execute(
            f"UPDATE tasker.workflow_steps SET {column} = %s WHERE workflow_step_uuid = %s",
            (value, step))


def readiness(conn: DictConn, task: UUID, ids: Mapping[str, UUID]) -> dict[str, dict[str, Any]]:
    names = {v: k for k, v in ids.items()}
    rows = conn.execute("SELECT * FROM tasker.get_step_readiness_status_v1(%s)", (task,))
    return {names[r["workflow_step_uuid"]]: r for r in rows.fetchall()}


def context(conn: DictConn, task: UUID) -> dict[str, Any]:
    row = conn.execute("SELECT * FROM tasker.get_task_execution_context_v1(%s)", (task,)).fetchone()
    assert row is not None
    return row
