"""Helpers shared by integration and end-to-end tests."""

from __future__ import annotations

import time
import uuid
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from tasker_shared.runtime.settings import Settings, load_settings

EXAMPLES = "tasker_worker.examples.handlers"


def service_settings(url: str, **overrides: Any) -> Settings:
    """Settings for services under test: fast polling, no health ports, small backoff."""
    base: dict[str, Any] = {
        "environment": "test",
        "database": {"url": url, "pool_min": 1, "pool_max": 4},
        "queues": {"poll_interval_ms": 200, "visibility_timeout_seconds": 5},
        "service": {"health_port": 0, "shutdown_timeout_seconds": 5, "log_level": "WARNING"},
        "backoff": {"base_seconds": 0.05, "max_seconds": 1.0, "jitter_enabled": False},
        "readiness": {"poll_interval_seconds": 0.5},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            base[key] = {**base[key], **value}
        else:
            base[key] = value
    return load_settings(overrides=base)


def submit(url: str, name: str, context: dict[str, Any], *, namespace: str = "examples",
           version: str = "1.0.0", request_id: str | None = None,
           headers: dict[str, Any] | None = None, **fields: Any) -> str:
    """Send a task request message the way the gateway does (with optional PGMQ headers,
    e.g. a W3C `traceparent`); returns the request id."""
    rid = request_id or str(uuid.uuid4())
    message = {"request_id": rid, "task_request": {
        "name": name, "namespace": namespace, "version": version, "context": context, **fields}}
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT tasker.send_v1('orchestration_task_requests', %s, %s)",
                     (Jsonb(message), Jsonb(headers) if headers else None))
    return rid


def outcome(url: str, request_id: str, timeout: float = 20.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
        while time.monotonic() < deadline:
            row = conn.execute("SELECT * FROM tasker.task_request_outcomes WHERE request_id = %s",
                               (request_id,)).fetchone()
            if row:
                return row
            time.sleep(0.02)
    raise AssertionError(f"no outcome for request {request_id}")


TERMINAL = {"complete", "error", "cancelled", "resolved_manually", "blocked_by_failures"}


def wait_task(url: str, task_uuid: Any, *, states: set[str] = TERMINAL,
              timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    state = None
    with psycopg.connect(url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute("SELECT tasker.get_current_task_state_v1(%s)", (task_uuid,)).fetchone()
            state = row[0] if row else None
            if state in states:
                return str(state)
            time.sleep(0.02)
    raise AssertionError(f"task {task_uuid} still {state} after {timeout}s")


def steps_of(url: str, task_uuid: Any) -> dict[str, dict[str, Any]]:
    with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
        rows = conn.execute(
            "SELECT r.name, r.current_state, r.attempts, ws.results, ws.inputs"
            " FROM tasker.get_step_readiness_status_v1(%s) r"
            " JOIN tasker.workflow_steps ws ON ws.workflow_step_uuid = r.workflow_step_uuid",
            (task_uuid,)).fetchall()
    return {r["name"]: r for r in rows}
