"""SQL calls of the worker (plain functions on a connection, run via `Database.run`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from psycopg.types.json import Jsonb

from tasker_shared.db.database import Conn
from tasker_shared.domain.template.model import EventDeclaration
from tasker_shared.store.outcomes import count_record
from tasker_worker.events.model import RoutedEvent, domain_events_queue
from tasker_worker.runtime.poison import replace_poison_messages


@dataclass(frozen=True, kw_only=True, slots=True)
class ClaimedStep:
    queue: str
    msg_id: int
    task_uuid: UUID
    step_uuid: UUID
    correlation_id: UUID
    step_name: str
    attempt: int
    max_attempts: int
    inputs: dict[str, Any]
    checkpoint: dict[str, Any] | None
    task_context: dict[str, Any]
    namespace: str
    task_name: str
    task_version: str
    named_task_uuid: UUID
    dependency_results: dict[str, Any]
    headers: dict[str, Any] | None


_CLAIM = ("tasker.claim_steps_v1(%s::text, %s::bigint[], %s::int, %s::numeric, %s::text,"
          " %s::int) AS c")


def claim_steps(
    conn: Conn,
    queue: str,
    ids: list[int] | None,
    limit: int,
    *,
    visibility_seconds: float,
    worker_id: str,
    max_reads: int,
) -> list[ClaimedStep]:
    """Claim + hydrate in one statement, run in autocommit (its own transaction).

    That transaction commits without waiting for its WAL flush (synchronous_commit off for
    it alone). Losing a claim in a server crash only returns the step to `enqueued` with its
    message visible again, exactly as when a worker dies after claiming; the durable commit
    that records the step's result flushes the claim with it."""
    rows = conn.execute(
        "SELECT c.* FROM set_config('synchronous_commit', 'off', true) AS _async_commit, "
        + _CLAIM, (queue, ids, limit, visibility_seconds, worker_id, max_reads)).fetchall()
    return _claimed(conn, queue, rows, visibility_seconds=visibility_seconds)


def _claimed(conn: Conn, queue: str, rows: list[dict[str, Any]], *,
             visibility_seconds: float) -> list[ClaimedStep]:
    return replace_poison_messages(conn, [
        ClaimedStep(
            queue=queue,
            msg_id=r["msg_id"],
            task_uuid=r["task_uuid"],
            step_uuid=r["step_uuid"],
            correlation_id=r["correlation_id"],
            step_name=r["step_name"],
            attempt=r["attempts"],
            max_attempts=r["max_attempts"],
            inputs=r["inputs"] or {},
            checkpoint=r["checkpoint"],
            task_context=r["task_context"] or {},
            namespace=r["namespace"],
            task_name=r["task_name"],
            task_version=r["task_version"],
            named_task_uuid=r["named_task_uuid"],
            dependency_results=r["dependency_results"] or {},
            headers=r["headers"],
        )
        for r in rows
    ], visibility_seconds=visibility_seconds)


@dataclass(frozen=True, kw_only=True, slots=True)
class StepOutcome:
    step: ClaimedStep
    success: bool
    payload: dict[str, Any]
    handler: str
    error: str | None
    declared: tuple[EventDeclaration, ...] = ()  # the step's publishes_events
    events: tuple[RoutedEvent, ...] = ()  # what it publishes (see tasker_worker.events)


def _record_item(o: StepOutcome) -> dict[str, Any]:
    """One element of a record batch; durable events ride along, sent by the statement that
    records the result (committed with it, never for a stale result)."""
    item = {"msg_id": o.step.msg_id, "step_uuid": str(o.step.step_uuid),
            "attempt": o.step.attempt, "success": o.success, "results": o.payload,
            "headers": o.step.headers}
    durable = [e.event.to_message() for e in o.events if e.durable]
    if durable:
        item["events"] = durable
        item["events_queue"] = domain_events_queue(o.step.namespace)
    return item


def record_results(conn: Conn, outcomes: list[StepOutcome], *, worker_id: str) -> list[str]:
    """Record several results, one statement per queue (each a transaction of its own when
    run in autocommit): for each, store it, move the step on and notify result processing
    (a plain success is applied at once instead: the step completes and its task moves on,
    see migration 0024); each queue's messages are deleted together. Returns 'recorded' or
    'stale' for each outcome, in order.

    Unlike a claim, a record waits for its WAL flush: once a handler's result is recorded,
    no server crash may lose it and run the step again (the fault suite crashes PostgreSQL
    with results in flight). A flushed record also makes the earlier claim durable (WAL is
    flushed in order), and several results recorded together share one flush. (A worker
    run with `database.synchronous_commit` off gives this up, as every service does.)"""
    by_queue: dict[str, list[StepOutcome]] = {}
    for o in outcomes:
        by_queue.setdefault(o.step.queue, []).append(o)
    rows = [conn.execute(
        "SELECT tasker.record_step_results_v1(%s::text, %s::jsonb, %s::text) AS outcomes",
        (queue, Jsonb([_record_item(o) for o in group]), worker_id),
    ).fetchone() for queue, group in by_queue.items()]
    return _recorded([row["outcomes"] if row else None for row in rows], outcomes)


def _recorded(results: list[Any], outcomes: list[StepOutcome]) -> list[str]:
    """'recorded' or 'stale' for each outcome, from record_step_results_v1's outputs."""
    recorded: dict[str, str] = {}
    for result in results:
        recorded.update(count_record(result) if result is not None else {})
    return [recorded.get(str(o.step.step_uuid), "stale") for o in outcomes]


def record_and_claim(
    conn: Conn, outcomes: list[StepOutcome], *, worker_id: str, queue: str, limit: int,
    visibility_seconds: float, max_reads: int,
) -> tuple[list[str], list[ClaimedStep]]:
    """`record_results` for outcomes of one queue, then claim up to `limit` steps from
    `queue` in the same transaction: what the record enqueues is claimed at once, without
    waiting for its notification and a claim transaction of its own. Steps the record's
    evaluations enqueue on `queue` are claimed as they are enqueued (the hand-off, see
    tasker._hand_off_v1), the rest of `limit` from the queue. One statement,
    tasker.record_and_claim_v1, run in autocommit (`Database.run_autocommit`): its own
    transaction, one round trip, committed with the record's WAL flush; an error anywhere
    rolls all of it back."""
    rows = conn.execute(
        "SELECT * FROM tasker.record_and_claim_v1(%s::text, %s::jsonb, %s::text, %s::int,"
        " %s::numeric, %s::int)",
        (queue, Jsonb([_record_item(o) for o in outcomes]), worker_id, limit,
         visibility_seconds, max_reads)).fetchall()
    recorded = _recorded([rows[0]["outcomes"]] if rows else [], outcomes)
    return recorded, _claimed(conn, queue, rows[1:], visibility_seconds=visibility_seconds)


def save_checkpoint(
    conn: Conn, step: ClaimedStep, *, cursor: Any, items_processed: int,
    accumulated: Any,
) -> dict[str, Any] | None:
    """Persist progress; the saved checkpoint, or None when refused (the step was cancelled
    or re-claimed by another attempt: this run no longer owns it)."""
    row = conn.execute(
        "SELECT tasker.save_checkpoint_v2(%s::uuid, %s::int, %s::jsonb, %s::bigint, %s::jsonb)"
        " AS checkpoint",
        (step.step_uuid, step.attempt, Jsonb(cursor), items_processed, Jsonb(accumulated)),
    ).fetchone()
    return row["checkpoint"] if row else None


def extend_visibility(conn: Conn, by_queue: dict[str, list[int]], seconds: float) -> int:
    """The heartbeat of running steps: hide their messages and extend their claims' leases
    for `seconds` more (a step is re-claimed only once its lease has expired). Commits
    without waiting for its WAL flush: a heartbeat lost in a server crash only lets a lease
    end sooner, as a worker pausing would."""
    extended = 0
    for queue, ids in by_queue.items():
        row = conn.execute(
            "SELECT set_config('synchronous_commit', 'off', true),"
            " tasker.extend_step_claims_v1(%s::text, %s::bigint[], %s::numeric) AS n",
            (queue, ids, seconds),
        ).fetchone()
        extended += int(row["n"]) if row else 0
    return extended


def heartbeat_step(conn: Conn, step: ClaimedStep, report: dict[str, Any],
                   seconds: float) -> tuple[bool, str, int | None]:
    """One handler heartbeat: store `report` as the step's progress and extend its lease
    and claim message for `seconds`, if this run (step, attempt) still holds the step.
    Returns (held, the step's state, its attempt). Commits without waiting for its WAL
    flush, like the periodic extension."""
    row = conn.execute(
        "SELECT h.* FROM set_config('synchronous_commit', 'off', true) AS _async_commit,"
        " tasker.heartbeat_step_v1(%s::text, %s::bigint, %s::uuid, %s::int, %s::numeric,"
        " %s::jsonb) AS h",
        (step.queue, step.msg_id, step.step_uuid, step.attempt, seconds, Jsonb(report)),
    ).fetchone()
    if row is None:
        return False, "missing", None
    return bool(row["held"]), str(row["state"]), row["attempts"]
