"""Human output of the gRPC commands: rich tables for tasks, steps, templates and DLQ entries."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from rich.table import Table

from tasker_client import from_struct, json_value, label


def when(value: datetime | None) -> str:
    """A timestamp as `YYYY-MM-DD HH:MM:SS` (UTC), or "" when unset."""
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else ""


def compact(value: Any) -> str:
    """A Struct (or dict) as compact JSON, "" when empty."""
    data = value if isinstance(value, dict) else from_struct(value)
    return json.dumps(data, separators=(",", ":"), default=str) if data else ""


def details(title: str, rows: Iterable[tuple[str, Any]]) -> Table:
    """A two-column key/value table; empty values are left out."""
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    for key, value in rows:
        text = "" if value is None else str(value)
        if text:
            table.add_row(key, text)
    return table


def _uuid_column(table: Table, name: str) -> None:
    table.add_column(name, overflow="fold", no_wrap=False, min_width=36)


def task_table(tasks: Iterable[Any]) -> Table:
    """One row per task."""
    table = Table(title="tasks", title_justify="left")
    _uuid_column(table, "task_uuid")
    for name in ("task", "status", "steps", "created_at"):
        table.add_column(name)
    for task in tasks:
        table.add_row(
            task.task_uuid,
            f"{task.namespace}/{task.name}@{task.version}",
            label(task.status),
            f"{task.completed_steps}/{task.total_steps}",
            when(task.created_at),
        )
    return table


def task_details(task: Any) -> Table:
    """Every populated field of one task."""
    return details(f"task {task.task_uuid}", [
        ("template", f"{task.namespace}/{task.name}@{task.version}"),
        ("status", label(task.status)),
        ("execution_status", label(task.execution_status)),
        ("recommended_action", label(task.recommended_action)),
        ("health_status", label(task.health_status)),
        ("steps", step_counts(task)),
        ("completion", f"{task.completion_percentage:.2f}%"),
        ("initiator", task.initiator),
        ("source_system", task.source_system),
        ("reason", task.reason),
        ("priority", task.priority),
        ("tags", ", ".join(task.tags)),
        ("correlation_id", task.correlation_id),
        ("parent_correlation_id", task.parent_correlation_id),
        ("context", compact(json_value(task.context_json, task.context))),
        ("created_at", when(task.created_at)),
        ("updated_at", when(task.updated_at)),
        ("completed_at", when(task.completed_at)),
    ])


def readiness_table(steps: Iterable[Any]) -> Table:
    """A task's steps as readiness rows (Task.steps or Step messages alike)."""
    table = Table(title="steps", title_justify="left")
    _uuid_column(table, "step_uuid")
    for name in ("name", "state", "attempts", "deps", "ready", "next_retry_at"):
        table.add_column(name)
    for step in steps:
        table.add_row(
            step.workflow_step_uuid,
            step.name,
            label(step.current_state),
            f"{step.attempts}/{step.max_attempts}",
            f"{step.completed_parents}/{step.total_parents}",
            "yes" if step.ready_for_execution else "",
            when(step.next_retry_at),
        )
    return table


def step_details(step: Any) -> Table:
    """Every populated field of one step."""
    return details(f"step {step.name} ({step.workflow_step_uuid})", [
        ("task_uuid", step.task_uuid),
        ("state", label(step.current_state)),
        ("attempts", f"{step.attempts}/{step.max_attempts}"),
        ("retryable", "yes" if step.retryable else "no"),
        ("dependencies", f"{step.completed_parents}/{step.total_parents} complete"),
        ("ready_for_execution", "yes" if step.ready_for_execution else "no"),
        ("backoff_request_seconds", step.backoff_request_seconds),
        ("inputs", compact(json_value(step.inputs_json, step.inputs))),
        ("results", compact(json_value(step.results_json, step.results))),
        ("last_attempted_at", when(step.last_attempted_at)),
        ("last_failure_at", when(step.last_failure_at)),
        ("next_retry_at", when(step.next_retry_at)),
        ("processed_at", when(step.processed_at)),
        ("created_at", when(step.created_at)),
        ("updated_at", when(step.updated_at)),
    ])


def audit_table(records: Iterable[Any]) -> Table:
    """A step's audit records, newest first."""
    table = Table(title="audit", title_justify="left")
    for name in ("recorded_at", "transition", "success", "time_ms", "worker"):
        table.add_column(name, overflow="fold")
    for record in records:
        table.add_row(
            when(record.recorded_at),
            f"{label(record.from_state) or '-'} -> {label(record.to_state)}",
            "yes" if record.success else "no",
            "" if record.execution_time_ms is None else str(record.execution_time_ms),
            record.worker_uuid or "",
        )
    return table


def template_table(templates: Iterable[Any]) -> Table:
    """One row per template summary."""
    table = Table(title="templates", title_justify="left")
    for name in ("namespace", "name", "version", "steps", "description"):
        table.add_column(name, overflow="fold")
    for tpl in templates:
        table.add_row(tpl.namespace, tpl.name, tpl.version, str(tpl.step_count), tpl.description)
    return table


def template_steps(template: Any) -> Table:
    """A template's steps."""
    table = Table(title=f"template {template.namespace}/{template.name}@{template.version}",
                  caption=template.description or None, title_justify="left")
    for name in ("step", "type", "handler", "depends_on", "retry"):
        table.add_column(name, overflow="fold")
    for step in template.steps:
        retry = f"{step.max_attempts} attempts" if step.retryable else "no"
        table.add_row(step.name, label(step.step_type), step.handler_callable,
                      ", ".join(step.dependencies), retry)
    return table


def dlq_table(entries: Iterable[Any]) -> Table:
    """One row per DLQ entry."""
    table = Table(title="dlq", title_justify="left")
    _uuid_column(table, "dlq_entry_uuid")
    _uuid_column(table, "task_uuid")
    for name in ("reason", "resolution", "original_state", "dlq_at"):
        table.add_column(name)
    for entry in entries:
        table.add_row(entry.dlq_entry_uuid, entry.task_uuid, label(entry.dlq_reason),
                      label(entry.resolution_status), label(entry.original_state),
                      when(entry.dlq_timestamp))
    return table


def dlq_details(entry: Any) -> Table:
    """Every populated field of one DLQ entry."""
    return details(f"dlq entry {entry.dlq_entry_uuid}", [
        ("task_uuid", entry.task_uuid),
        ("reason", label(entry.dlq_reason)),
        ("original_state", label(entry.original_state)),
        ("resolution_status", label(entry.resolution_status)),
        ("resolution_notes", entry.resolution_notes),
        ("resolved_by", entry.resolved_by),
        ("dlq_timestamp", when(entry.dlq_timestamp)),
        ("resolution_timestamp", when(entry.resolution_timestamp)),
        ("metadata", compact(entry.metadata)),
        ("task_snapshot", compact(entry.task_snapshot)),
    ])


def dlq_stats_table(stats: Iterable[Any]) -> Table:
    """DLQ entries grouped by reason."""
    table = Table(title="dlq stats", title_justify="left")
    for name in ("reason", "total", "pending", "resolved", "failed", "cancelled", "newest"):
        table.add_column(name)
    for row in stats:
        table.add_row(label(row.dlq_reason), str(row.total_entries), str(row.pending),
                      str(row.manually_resolved), str(row.permanent_failures),
                      str(row.cancelled), when(row.newest_entry))
    return table


def step_counts(task: Any) -> str:
    """How many of a task's steps are in each state; the parts always add up to the total
    (counted from the task's step rows, which carry every step)."""
    counts: Counter[str] = Counter(label(step.current_state) or "unknown" for step in task.steps)
    total = len(task.steps) or int(task.total_steps)
    if not task.steps:  # no rows: the server's counters, with what they leave out
        counts = Counter({"complete": int(task.completed_steps),
                          "in_progress": int(task.in_progress_steps),
                          "pending": int(task.pending_steps), "error": int(task.failed_steps)})
        counts["other"] = max(0, total - sum(counts.values()))
    parts = [f"{n} {state}" for state, n in sorted(counts.items(), key=_state_order) if n]
    return f"{total} step(s): " + (", ".join(parts) if parts else "none")


_STATE_ORDER = ("complete", "resolved_manually", "in_progress", "enqueued",
                "enqueued_for_orchestration", "enqueued_as_error_for_orchestration",
                "waiting_for_retry", "pending", "error", "cancelled")


def _state_order(item: tuple[str, int]) -> int:
    state = item[0]
    return _STATE_ORDER.index(state) if state in _STATE_ORDER else len(_STATE_ORDER)


def update_line(update: Any) -> str:
    """One watch update as a line of text: `HH:MM:SS  task  a -> b` or
    `HH:MM:SS  step  NAME: a -> b`."""
    stamp = update.timestamp.strftime("%H:%M:%S") if update.timestamp else "--:--:--"
    if update.step_state is not None:
        before, now_label = label(update.previous_step_state), label(update.step_state)
        subject = f"step  {update.step_name or update.step_uuid}: "
    else:
        before, now_label = label(update.previous_task_state), label(update.task_state)
        subject = "task  "
    return f"{stamp}  {subject}{before} -> {now_label}" if before else f"{stamp}  {subject}{now_label}"


def step_failure_line(failure: Any, *, now: datetime) -> str:
    """A failed attempt: its error and, when it will be retried, when."""
    kind = f"{failure.error_type}: " if failure.error_type else ""
    text = (f"          {failure.name} failed (attempt {failure.attempts}/"
            f"{failure.max_attempts}): {kind}{failure.message}")
    if failure.state == "waiting_for_retry":
        due = failure.next_retry_at
        if due is None:
            return text + "; retry when its backoff ends"
        wait = max(0.0, (due - now).total_seconds())
        return text + f"; next retry at {due.strftime('%H:%M:%S')} (in {wait:.0f}s)"
    if failure.state == "error":
        spent = failure.attempts >= failure.max_attempts
        return text + ("; no attempt left" if spent else "; not retryable")
    return text


def final_table(rows: Iterable[dict[str, Any]]) -> Table:
    """The task's steps when the watch ends: state, attempts and result or error."""
    table = Table(title="results", title_justify="left")
    for name in ("step", "state", "attempts"):
        table.add_column(name)
    table.add_column("result / error", overflow="fold")
    for row in rows:
        shown = (f"error: {row['error']}" if row["error"] is not None
                 else compact(row["result"]) if isinstance(row["result"], dict)
                 else "" if row["result"] is None
                 else json.dumps(row["result"], default=str))
        table.add_row(row["name"], row["state"], f"{row['attempts']}/{row['max_attempts']}",
                      shown)
    return table


def outcome_line(task_uuid: str, status: str, rows: Iterable[dict[str, Any]]) -> str:
    """The last line of a watch: the outcome and, when an operator must act, how."""
    if status == "blocked_by_failures":
        failed = [row["name"] for row in rows if row["state"] == "error"]
        first = failed[0] if failed else "STEP"
        return (f"task {task_uuid} is blocked by failures ({', '.join(failed) or 'a step'} "
                f"failed for good): retry or resolve with `tasker step resolve {task_uuid} "
                f"{first} --action reset_for_retry|resolve_manually|complete_manually "
                "--reason ... --actor ...`")
    if status in ("complete", "error", "cancelled", "resolved_manually"):
        return f"task {task_uuid} is {status}"
    return f"the watch ended while task {task_uuid} is {status}"
