"""The demo's workflows: submit them through the gateway (gRPC), show live progress, print
each task's outcome and step results. With no gateway, requests go straight onto the
ingestion queue and progress is read from the database."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from rich.console import Console
from rich.live import Live
from rich.table import Table

DEMO_TASKS: list[tuple[str, dict[str, Any]]] = [
    ("linear_workflow", {"even_number": 2}),
    ("diamond_workflow", {"even_number": 3}),
    ("flaky_workflow", {"even_number": 4}),
]
FINAL = {"complete", "error", "cancelled", "resolved_manually", "blocked_by_failures",
         "invalid", "duplicate"}


@dataclass(kw_only=True)
class StepView:
    name: str
    state: str
    attempts: int
    result: Any = None


@dataclass(kw_only=True)
class TaskView:
    workflow: str
    task_uuid: str | None = None
    state: str = "requested"
    reason: str | None = None
    steps: list[StepView] = field(default_factory=list)


class Backend(Protocol):
    def submit(self, name: str, context: dict[str, Any]) -> TaskView: ...

    def refresh(self, view: TaskView, *, with_results: bool) -> None: ...


class GatewayBackend:
    """Through the gateway with the Python client (what an application does)."""

    def __init__(self, address: str) -> None:
        from tasker_client import SyncTaskerClient

        self.client = SyncTaskerClient(address, timeout=30.0)

    def close(self) -> None:
        self.client.close()

    def submit(self, name: str, context: dict[str, Any]) -> TaskView:
        created = self.client.create_task(name, namespace="examples", version="1.0.0",
                                          context={**context, "run": uuid.uuid4().hex},
                                          initiator="tasker-demo", reason="demo")
        return TaskView(workflow=name, task_uuid=created.task_uuid,
                        state="created" if created.created else "accepted")

    def refresh(self, view: TaskView, *, with_results: bool) -> None:
        from tasker_client import label

        if view.task_uuid is None:
            return
        task = self.client.get_task(view.task_uuid)
        view.state = label(task.status)
        results = (self.client.get_task_context(view.task_uuid).step_results
                   if with_results else {})
        view.steps = [StepView(name=s.name, state=label(s.current_state),
                               attempts=int(s.attempts),
                               result=_result_of(results.get(s.name)))
                      for s in task.steps]


class QueueBackend:
    """Straight onto the ingestion queue (no gateway); reads progress from the database."""

    def __init__(self, database_url: str) -> None:
        import psycopg
        from psycopg.rows import dict_row

        self.conn = psycopg.connect(database_url, autocommit=True, row_factory=dict_row)

    def close(self) -> None:
        self.conn.close()

    def submit(self, name: str, context: dict[str, Any]) -> TaskView:
        from psycopg.types.json import Jsonb

        rid = str(uuid.uuid4())
        self.conn.execute(
            "SELECT tasker.send_v1('orchestration_task_requests', %s)",
            (Jsonb({"request_id": rid, "task_request": {
                "name": name, "namespace": "examples", "version": "1.0.0",
                "context": {**context, "run": uuid.uuid4().hex},
                "initiator": "tasker-demo", "reason": "demo"}}),))
        view = TaskView(workflow=name)
        view.reason = rid  # the request id until ingestion answers
        return view

    def refresh(self, view: TaskView, *, with_results: bool) -> None:
        if view.task_uuid is None:
            row = self.conn.execute(
                "SELECT outcome, task_uuid, reason FROM tasker.task_request_outcomes"
                " WHERE request_id = %s", (view.reason,)).fetchone()
            if row is None:
                return
            if row["task_uuid"] is None:
                view.state, view.reason = row["outcome"], row["reason"]
                return
            view.task_uuid, view.reason = str(row["task_uuid"]), None
        state = self.conn.execute("SELECT tasker.get_current_task_state_v1(%s) AS s",
                                  (view.task_uuid,)).fetchone()
        view.state = state["s"] if state else "?"
        rows = self.conn.execute(
            "SELECT r.name, r.current_state, r.attempts, ws.results -> 'result' AS result"
            " FROM tasker.get_step_readiness_status_v1(%s) r JOIN tasker.workflow_steps ws"
            " ON ws.workflow_step_uuid = r.workflow_step_uuid ORDER BY ws.created_at, r.name",
            (view.task_uuid,)).fetchall()
        view.steps = [StepView(name=r["name"], state=r["current_state"],
                               attempts=r["attempts"], result=r["result"]) for r in rows]


def _result_of(stored: Any) -> Any:
    if isinstance(stored, dict) and "result" in stored:
        return stored["result"]
    return stored


def _table(views: list[TaskView], elapsed: float) -> Table:
    table = Table(title=f"Tasker demo — {elapsed:0.1f}s")
    for column in ("workflow", "task", "state", "steps"):
        table.add_column(column)
    for view in views:
        steps = " ".join(
            f"{s.name}:{'✔' if s.state == 'complete' else s.state}"
            + (f"(x{s.attempts})" if s.attempts > 1 else "") for s in view.steps)
        table.add_row(view.workflow, (view.task_uuid or "")[:13], view.state, steps)
    return table


def run_demo(backend: Backend, console: Console, *, timeout: float,
             clock: Callable[[], float] = time.monotonic) -> bool:
    """Submit the sample workflows, show progress until they finish, print the results."""
    started = clock()
    views = [backend.submit(name, ctx) for name, ctx in DEMO_TASKS]
    with Live(_table(views, 0.0), console=console, refresh_per_second=10) as live:
        while clock() - started < timeout:
            for view in views:
                if view.state not in FINAL:
                    backend.refresh(view, with_results=False)
            live.update(_table(views, clock() - started))
            if all(v.state in FINAL for v in views):
                break
            time.sleep(0.1)
    ok = True
    for view in views:
        backend.refresh(view, with_results=True)
        good = view.state == "complete"
        ok = ok and good
        console.print(f"\n[bold]{view.workflow}[/] → [{'green' if good else 'red'}]"
                      f"{view.state}[/]" + (f" ({view.reason})" if view.reason and not good
                                           else ""))
        for step in view.steps:
            console.print(f"  {step.name:<18} {step.state:<10} attempts={step.attempts}  "
                          f"result={step.result}", markup=False)
    console.print(f"\n[bold]{'all tasks completed' if ok else 'some tasks did not complete'}"
                  f"[/] in {clock() - started:0.2f}s")
    return ok
