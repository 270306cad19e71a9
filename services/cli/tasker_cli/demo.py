"""The demo's workflows: submit them, show live progress, print outcomes and results."""

from __future__ import annotations

import time
import uuid
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from rich.console import Console
from rich.live import Live
from rich.table import Table

from tasker_cli.cluster import Cluster

DEMO_TASKS: list[tuple[str, dict[str, Any]]] = [
    ("linear_workflow", {"even_number": 2}),
    ("diamond_workflow", {"even_number": 3}),
    ("flaky_workflow", {"even_number": 4}),
]
FINAL = {"complete", "error", "cancelled", "resolved_manually", "blocked_by_failures"}


def _submit(conn: psycopg.Connection[dict[str, Any]], name: str, context: dict[str, Any]) -> str:
    request_id = str(uuid.uuid4())
    message = {"request_id": request_id, "task_request": {
        "name": name, "namespace": "examples", "version": "1.0.0", "context": context,
        "initiator": "tasker-demo", "reason": "demo"}}
    conn.execute("SELECT tasker.send_v1('orchestration_task_requests', %s)", (Jsonb(message),))
    return request_id


def _status(conn: psycopg.Connection[dict[str, Any]], request_ids: list[str]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for rid in request_ids:
        out = conn.execute("SELECT outcome, task_uuid, reason FROM tasker.task_request_outcomes"
                           " WHERE request_id = %s", (rid,)).fetchone()
        if out is None or out["task_uuid"] is None:
            rows.append({"request_id": rid, "state": out["outcome"] if out else "requested",
                         "steps": [], "task_uuid": None, "reason": out and out["reason"]})
            continue
        state = conn.execute("SELECT tasker.get_current_task_state_v1(%s) AS s",
                             (out["task_uuid"],)).fetchone()
        steps = conn.execute(
            "SELECT r.name, r.current_state, r.attempts, ws.results -> 'result' AS result"
            " FROM tasker.get_step_readiness_status_v1(%s) r JOIN tasker.workflow_steps ws"
            " ON ws.workflow_step_uuid = r.workflow_step_uuid ORDER BY ws.created_at, r.name",
            (out["task_uuid"],)).fetchall()
        rows.append({"request_id": rid, "task_uuid": out["task_uuid"],
                     "state": state["s"] if state else "?", "steps": steps, "reason": None})
    return rows


def _table(names: list[str], rows: list[dict[str, Any]], elapsed: float) -> Table:
    table = Table(title=f"Tasker demo — {elapsed:0.1f}s")
    table.add_column("workflow")
    table.add_column("task")
    table.add_column("state")
    table.add_column("steps")
    for name, row in zip(names, rows, strict=True):
        steps = " ".join(
            f"{s['name']}:{'✔' if s['current_state'] == 'complete' else s['current_state']}"
            + (f"(x{s['attempts']})" if s["attempts"] and s["attempts"] > 1 else "")
            for s in row["steps"])
        table.add_row(name, str(row["task_uuid"] or "")[:13], row["state"], steps)
    return table


def run_demo(cluster: Cluster, console: Console, *, timeout: float) -> bool:
    names = [name for name, _ in DEMO_TASKS]
    started = time.monotonic()
    with psycopg.connect(cluster.database_url, autocommit=True, row_factory=dict_row) as conn:
        request_ids = [_submit(conn, name, ctx) for name, ctx in DEMO_TASKS]
        rows = _status(conn, request_ids)
        with Live(_table(names, rows, 0.0), console=console, refresh_per_second=10) as live:
            while time.monotonic() - started < timeout:
                rows = _status(conn, request_ids)
                live.update(_table(names, rows, time.monotonic() - started))
                if all(r["state"] in FINAL or r["state"] in ("invalid", "duplicate") for r in rows):
                    break
                time.sleep(0.1)
    ok = True
    for name, row in zip(names, rows, strict=True):
        good = row["state"] == "complete"
        ok = ok and good
        console.print(f"\n[bold]{name}[/] → [{'green' if good else 'red'}]{row['state']}[/]"
                      + (f" ({row['reason']})" if row.get("reason") else ""))
        for step in row["steps"]:
            console.print(f"  {step['name']:<18} {step['current_state']:<10} "
                          f"attempts={step['attempts']}  result={step['result']}")
    console.print(f"\n[bold]{'all tasks completed' if ok else 'some tasks did not complete'}[/]"
                  f" in {time.monotonic() - started:0.2f}s")
    return ok
