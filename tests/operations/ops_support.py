"""Helpers for the operations tests: templates, tasks put in a state since a chosen moment."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any
from uuid import UUID

import psycopg
import trio
from psycopg.types.json import Jsonb

Conn = psycopg.Connection[dict[str, Any]]

# Events from pending to states the walk table (task_state_paths) does not end in.
_EVENTS = {
    "initializing": ["start"],
    "enqueuing_steps": ["start", "ready_steps_found"],
    "evaluating_results": ["start", "ready_steps_found", "steps_enqueued", "step_completed"],
    "error": ["start", "ready_steps_found", "enqueue_failed"],
    "waiting_for_retry": ["start", "ready_steps_found", "steps_enqueued", "step_failed"],
    "cancelled": ["cancel"],
}


def make_template(conn: Conn, name: str, *, namespace: str = "ops",
                  lifecycle: dict[str, Any] | None = None, version: str = "1.0.0",
                  steps: int = 1) -> UUID:
    config = {"name": name, "namespace_name": namespace, "version": version,
              "lifecycle": lifecycle,
              "steps": [{"name": f"{name}_s{i}"} for i in range(1, steps + 1)]}
    row = conn.execute(
        "SELECT tasker.register_template_v1(%s, %s, %s, NULL, %s) AS id",
        (namespace, name, version, Jsonb(config))).fetchone()
    assert row is not None
    return UUID(str(row["id"]))


def make_task(conn: Conn, named_task: UUID, template_name: str, *, steps: int = 1,
              priority: int = 0) -> UUID:
    task = {"identity_hash": uuid.uuid4().hex, "correlation_id": str(uuid.uuid4()),
            "initiator": "tests", "source_system": "tests", "reason": "ops",
            "priority": priority}
    step_rows = [{"name": f"{template_name}_s{i}"} for i in range(1, steps + 1)]
    row = conn.execute("SELECT tasker.create_task_v1(%s, %s, %s, '[]') AS id",
                       (named_task, Jsonb(task), Jsonb(step_rows))).fetchone()
    assert row is not None and row["id"] is not None
    return UUID(str(row["id"]))


def put_in_state(conn: Conn, task: UUID, state: str, *, minutes_ago: float = 0.0,
                 age_minutes: float | None = None) -> None:
    """Walk the task from pending to `state`, then date that transition `minutes_ago` and
    the task itself `age_minutes` (default: as old as the state)."""
    if state in _EVENTS:
        current = "pending"
        for event in _EVENTS[state]:
            row = conn.execute("SELECT tasker.transition_task_v1(%s, %s, %s) AS s",
                               (task, current, event)).fetchone()
            assert row is not None and row["s"] is not None, (current, event)
            current = row["s"]
    elif state != "pending":
        conn.execute("SELECT tasker._walk_task_v1(%s, 'pending', %s, NULL, '{}')", (task, state))
    backdate(conn, task, minutes_ago=minutes_ago,
             age_minutes=age_minutes if age_minutes is not None else minutes_ago)


def backdate(conn: Conn, task: UUID, *, minutes_ago: float, age_minutes: float) -> None:
    conn.execute("UPDATE tasker.task_transitions SET created_at = now() - %s * interval '1 minute'"
                 " WHERE task_uuid = %s AND most_recent", (minutes_ago, task))
    conn.execute("UPDATE tasker.tasks SET created_at = now() - %s * interval '1 minute'"
                 " WHERE task_uuid = %s", (age_minutes, task))


def state_of(conn: Conn, task: UUID) -> str:
    row = conn.execute("SELECT tasker.get_current_task_state_v1(%s) AS s", (task,)).fetchone()
    assert row is not None
    return str(row["s"])


def dlq_rows(conn: Conn, task: UUID | None = None) -> list[dict[str, Any]]:
    if task is None:
        return conn.execute("SELECT * FROM tasker.tasks_dlq ORDER BY dlq_timestamp").fetchall()
    return conn.execute("SELECT * FROM tasker.tasks_dlq WHERE task_uuid = %s"
                        " ORDER BY dlq_timestamp", (task,)).fetchall()


def detect(conn: Conn, *, dry_run: bool = False, batch: int = 100, deps: float = 60,
           retry: float = 30, in_process: float = 30, lifetime_hours: float = 24,
           auto_error: bool = True, auto_dlq: bool = True,
           now: Any = None) -> dict[UUID, dict[str, Any]]:
    rows = conn.execute(
        "SELECT * FROM tasker.detect_and_transition_stale_tasks_v1(%s::boolean, %s::int,"
        " %s::numeric, %s::numeric, %s::numeric, %s::numeric, NULL, %s::boolean, %s::boolean,"
        " COALESCE(%s::timestamptz, now()))",
        (dry_run, batch, deps, retry, in_process, lifetime_hours, auto_error, auto_dlq, now),
    ).fetchall()
    return {r["task_uuid"]: r for r in rows}


async def until(condition: Callable[[], bool], *, period: float = 0.01,
                limit: float = 30.0) -> None:
    """Wait (checking every `period`) until `condition()` holds."""
    with trio.fail_after(limit):
        for _ in iter(int, 1):
            if condition():
                return
            await trio.sleep(period)
