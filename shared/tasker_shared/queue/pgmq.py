"""PGMQ access as plain functions on a connection (run them inside `Database.run`)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb

from tasker_shared.db.database import Conn


@dataclass(frozen=True, kw_only=True, slots=True)
class RawMessage:
    msg_id: int
    read_ct: int
    enqueued_at: datetime
    message: Any
    headers: dict[str, Any] | None
    # What a queue-specific lock query read along with the message (result processing: the
    # step the result is for, locked); None for a plain lock.
    row: dict[str, Any] | None = None
    # Why the message must be set aside, when the lock found it cannot be handled (e.g. it
    # names a step or task that does not exist); see `TransactionalProcessor`.
    set_aside_reason: str | None = None


def send(
    conn: Conn,
    queue: str,
    message: Any,
    *,
    headers: dict[str, Any] | None = None,
    deliver_at: datetime | None = None,
) -> int:
    """Send (with NOTIFY) inside the caller's transaction; returns the message id."""
    row = conn.execute(
        "SELECT tasker.send_v1(%s::text, %s::jsonb, %s::jsonb, %s::timestamptz) AS msg_id",
        (queue, Jsonb(message), Jsonb(headers) if headers else None, deliver_at),
    ).fetchone()
    assert row is not None
    return int(row["msg_id"])


def lock_messages(conn: Conn, queue: str, ids: list[int] | None, limit: int) -> list[RawMessage]:
    """Lock visible messages for this transaction (SKIP LOCKED)."""
    rows = conn.execute(
        "SELECT * FROM tasker.lock_messages_v1(%s::text, %s::bigint[], %s::int)", (queue, ids, limit)
    ).fetchall()
    return [
        RawMessage(
            msg_id=r["msg_id"],
            read_ct=r["read_ct"],
            enqueued_at=r["enqueued_at"],
            message=r["message"],
            headers=r["headers"],
        )
        for r in rows
    ]


_MESSAGE_COLUMNS = ("msg_id", "read_ct", "enqueued_at", "message", "headers")


def lock_messages_with(
    conn: Conn, function: str, queue: str, ids: list[int] | None, limit: int
) -> list[RawMessage]:
    """Lock through a queue-specific SQL function that returns the `lock_messages_v1`
    columns plus what its handler needs; those extra columns become `RawMessage.row`.
    `function` is a fixed, schema-qualified name from the code, never user input."""
    rows = conn.execute(
        f"SELECT * FROM {function}(%s::text, %s::bigint[], %s::int)",
        (queue, ids, limit),
    ).fetchall()
    return [
        RawMessage(**{c: r.pop(c) for c in _MESSAGE_COLUMNS}, row=r)
        for r in rows
    ]


def unknown_set_aside(raw: list[RawMessage], *, key: str, what: str) -> list[RawMessage]:
    """Mark for setting aside each message whose queue-specific lock found no `what` for
    the message's `key` (the lock's column `key` is NULL): "unknown <what> <value>"."""
    return [
        m if m.row is None or m.row.get(key) is not None else replace(
            m, set_aside_reason=f"unknown {what} "
            f"{str(m.message.get(key) if isinstance(m.message, dict) else None)[:64]}")
        for m in raw
    ]


def delete_messages(conn: Conn, queue: str, ids: list[int]) -> None:
    """Delete (acknowledge) messages; the result is not awaited, so in pipeline mode the
    statement travels with whatever comes next (the COMMIT)."""
    conn.execute("SELECT tasker.delete_messages_v1(%s::text, %s::bigint[])", (queue, ids))


def set_aside(conn: Conn, queue: str, msg_id: int, reason: str) -> bool:
    row = conn.execute(
        "SELECT tasker.set_aside_message_v1(%s::text, %s::bigint, %s::text) AS ok", (queue, msg_id, reason)
    ).fetchone()
    return bool(row and row["ok"])


def message_failed(
    conn: Conn, queue: str, msg_id: int, reason: str, *, max_reads: int, retry_delay: float
) -> str:
    """Count a failed read; returns 'retry', 'set_aside' or 'gone'."""
    row = conn.execute(
        "SELECT tasker.message_failed_v1(%s::text, %s::bigint, %s::text, %s::int, %s::numeric) AS outcome",
        (queue, msg_id, reason[:2000], max_reads, retry_delay),
    ).fetchone()
    return str(row["outcome"]) if row else "gone"


def extend_visibility(conn: Conn, queue: str, ids: list[int], seconds: float) -> int:
    row = conn.execute(
        "SELECT tasker.extend_visibility_v1(%s::text, %s::bigint[], %s::numeric) AS n", (queue, ids, seconds)
    ).fetchone()
    return int(row["n"]) if row else 0


def queue_depths(conn: Conn) -> dict[str, tuple[int, int, float]]:
    """queue -> (total messages, visible messages, oldest age in seconds)."""
    rows = conn.execute("SELECT * FROM tasker.queue_depths_v1()").fetchall()
    return {r["queue_name"]: (r["depth"], r["visible"], r["oldest_age_seconds"]) for r in rows}


def queue_channel(queue: str) -> str:
    """The NOTIFY channel `tasker.send_v1` signals for `queue`."""
    return f"tasker_queue.{queue}"
