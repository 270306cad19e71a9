"""DLQ investigations: list, look up, open and resolve `tasks_dlq` entries; dashboards.

Plain functions on a connection (run them through `Database.run`). Rows are dicts of
database values: UUIDs, timezone-aware datetimes, JSON objects as dicts, enums as strings.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from psycopg.types.json import Jsonb

from tasker_shared.db.database import Conn
from tasker_shared.errors import NotFoundError, ValidationError

DLQ_REASONS = (
    "staleness_timeout", "max_retries_exceeded", "dependency_cycle_detected",
    "worker_unavailable", "manual_dlq",
)
RESOLUTION_STATUSES = ("pending", "manually_resolved", "permanently_failed", "cancelled")

_ENTRY_COLUMNS = (
    "dlq_entry_uuid, task_uuid, original_state::text AS original_state,"
    " dlq_reason::text AS dlq_reason, dlq_timestamp,"
    " resolution_status::text AS resolution_status, resolution_timestamp, resolution_notes,"
    " resolved_by, task_snapshot, metadata, created_at, updated_at"
)
_ENTRY_SQL = f"SELECT {_ENTRY_COLUMNS} FROM tasker.tasks_dlq"


def _check_status(status: str | None) -> None:
    if status is not None and status not in RESOLUTION_STATUSES:
        raise ValidationError(f"unknown resolution_status {status!r}; expected one of "
                              f"{', '.join(RESOLUTION_STATUSES)}")


def _check_page(limit: int, offset: int = 0) -> None:
    if limit < 1 or limit > 1000:
        raise ValidationError(f"limit must be between 1 and 1000, got {limit}")
    if offset < 0:
        raise ValidationError(f"offset must not be negative, got {offset}")


def list_entries(
    conn: Conn, *, resolution_status: str | None, limit: int, offset: int
) -> list[dict[str, Any]]:
    """Entries, newest first, optionally only those with one resolution status."""
    _check_status(resolution_status)
    _check_page(limit, offset)
    return conn.execute(
        _ENTRY_SQL + " WHERE (%(s)s::text IS NULL OR resolution_status::text = %(s)s::text)"
        " ORDER BY dlq_timestamp DESC, dlq_entry_uuid DESC LIMIT %(l)s OFFSET %(o)s",
        {"s": resolution_status, "l": limit, "o": offset},
    ).fetchall()


def entry(conn: Conn, dlq_entry_uuid: UUID | str) -> dict[str, Any]:
    """One entry by its id; NotFoundError when there is none."""
    row = conn.execute(_ENTRY_SQL + " WHERE dlq_entry_uuid = %s",
                       (str(dlq_entry_uuid),)).fetchone()
    if row is None:
        raise NotFoundError(f"DLQ entry {dlq_entry_uuid} not found")
    return row


def entry_by_task(conn: Conn, task_uuid: UUID | str) -> dict[str, Any] | None:
    """The task's latest entry (with its snapshot), or None."""
    return conn.execute(
        _ENTRY_SQL + " WHERE task_uuid = %s ORDER BY dlq_timestamp DESC, dlq_entry_uuid DESC"
        " LIMIT 1", (str(task_uuid),)).fetchone()


def update_investigation(
    conn: Conn,
    dlq_entry_uuid: UUID | str,
    *,
    resolution_status: str | None,
    resolution_notes: str | None,
    resolved_by: str | None,
    metadata: dict[str, Any] | None,
) -> dict[str, Any]:
    """Record what the operator found or did; None leaves a field unchanged.

    Leaving `pending` stamps `resolution_timestamp`; every update is appended to
    `metadata.history` (who, when, from/to status, notes).
    """
    _check_status(resolution_status)
    row = conn.execute(
        "SELECT tasker.update_dlq_investigation_v1(%s::uuid, %s::text, %s::text, %s::text,"
        " %s::jsonb) AS found",
        (str(dlq_entry_uuid), resolution_status, resolution_notes, resolved_by,
         Jsonb(metadata) if metadata else None),
    ).fetchone()
    if row is None or not row["found"]:
        raise NotFoundError(f"DLQ entry {dlq_entry_uuid} not found")
    return entry(conn, dlq_entry_uuid)


def create_manual_entry(
    conn: Conn, task_uuid: UUID | str, *, reason: str, notes: str | None,
    created_by: str | None = None,
) -> dict[str, Any]:
    """Open an entry by hand. NotFoundError for an unknown task; ConflictError (from the
    database boundary) when the task already has a pending entry."""
    if reason not in DLQ_REASONS:
        raise ValidationError(
            f"unknown DLQ reason {reason!r}; expected one of {', '.join(DLQ_REASONS)}")
    row = conn.execute(
        "SELECT tasker.create_manual_dlq_entry_v1(%s::uuid, %s::text, %s::text, %s::text) AS id",
        (str(task_uuid), reason, notes, created_by),
    ).fetchone()
    assert row is not None
    return entry(conn, row["id"])


def stats(conn: Conn) -> list[dict[str, Any]]:
    """Entries grouped by reason (v_dlq_dashboard)."""
    return conn.execute(
        "SELECT dlq_reason, total_entries, pending, manually_resolved, permanent_failures,"
        " cancelled, oldest_entry, newest_entry,"
        " avg_resolution_time_minutes::float8 AS avg_resolution_time_minutes"
        " FROM tasker.v_dlq_dashboard ORDER BY dlq_reason").fetchall()


def investigation_queue(conn: Conn, *, limit: int) -> list[dict[str, Any]]:
    """Pending entries, highest priority score first (v_dlq_investigation_queue)."""
    _check_page(limit)
    return conn.execute(
        "SELECT dlq_entry_uuid, task_uuid, namespace_name, task_name, original_state,"
        " dlq_reason, dlq_timestamp, resolution_notes, minutes_in_dlq::float8 AS minutes_in_dlq,"
        " priority_score::float8 AS priority_score FROM tasker.v_dlq_investigation_queue"
        " ORDER BY priority_score DESC, dlq_timestamp LIMIT %s", (limit,)).fetchall()


def staleness_monitoring(
    conn: Conn, *, limit: int, waiting_for_dependencies_minutes: float = 60.0,
    waiting_for_retry_minutes: float = 30.0, steps_in_process_minutes: float = 30.0,
) -> list[dict[str, Any]]:
    """Non-terminal tasks with their staleness health (stale / warning / healthy), the most
    overdue first. The thresholds default to the settings' defaults."""
    _check_page(limit)
    return conn.execute(
        "SELECT task_uuid, namespace_name, task_name, current_state,"
        " time_in_state_minutes::float8 AS time_in_state_minutes,"
        " task_age_minutes::float8 AS task_age_minutes,"
        " ceil(staleness_threshold_minutes)::int AS staleness_threshold_minutes,"
        " health_status, priority"
        " FROM tasker.get_task_staleness_monitoring_v1(%s::numeric, %s::numeric,"
        " %s::numeric) LIMIT %s",
        (waiting_for_dependencies_minutes, waiting_for_retry_minutes, steps_in_process_minutes,
         limit),
    ).fetchall()
