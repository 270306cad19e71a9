"""CreateTasks: N task requests queued in ONE statement, their outcomes awaited all at once.

Every item is checked as a single create checks it; the valid ones go to the ingestion queue
in one transaction (one statement, flushed once), ingestion creates them in its own batches,
and the outcome notifications of all items are awaited together, so a batch costs about one
single create's latency whatever its size. Each item is answered on its own: created (with
its task), accepted (still queued after the wait), duplicate (naming the existing task) or
invalid (with the reason and the error code a single create would answer with). Durability
is as for a single create (see usecases/create.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from uuid import UUID, uuid4

import trio
from psycopg.types.json import Jsonb

from tasker_gateway.context import GatewayContext
from tasker_gateway.errors import classify
from tasker_gateway.models.batch import BatchOutcome
from tasker_gateway.models.tasks import TaskRequestBody, TaskView
from tasker_gateway.outcomes import IngestionOutcome, Waiter
from tasker_gateway.usecases.create import (
    MAX_WAIT_SECONDS,
    existing_task,
    flush_wal,
    gather_outcomes,
    template_exists,
    to_task_request,
    trace_headers,
)
from tasker_gateway.usecases.inputs import check_json_input, parse_request_id
from tasker_gateway.usecases.views import task_views
from tasker_shared.contracts.messages import encode_task_request_message
from tasker_shared.contracts.payloads import TaskRequest, TaskRequestMessage, TaskRequestMetadata
from tasker_shared.contracts.queues import ORCHESTRATION_TASK_REQUESTS
from tasker_shared.db.database import Conn
from tasker_shared.domain.limits import JsonLimitError
from tasker_shared.errors import TaskerError, ValidationError
from tasker_shared.runtime.settings import GatewaySettings
from tasker_shared.store.templates import TemplateCache


@dataclass(frozen=True, kw_only=True, slots=True)
class BatchItem:
    """One item as its transport read it: a request body, or the error that stopped it."""

    body: TaskRequestBody | None
    request_id: str | None = None
    error: TaskerError | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class ItemResult:
    index: int
    outcome: BatchOutcome
    request_id: str | None
    task: TaskView | None = None
    task_uuid: UUID | None = None
    existing_task_uuid: UUID | None = None
    reason: str | None = None
    error_code: str | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class _Queued:
    index: int
    request_id: str
    request: TaskRequest
    payload: dict[str, object]


def check_batch_size(settings: GatewaySettings, count: int) -> None:
    """ValidationError for an empty batch, JsonLimitError (413) for one over the bound."""
    if count == 0:
        raise ValidationError("tasks: a batch needs at least one task request",
                              details={"field": "tasks"})
    if count > settings.max_batch_tasks:
        raise JsonLimitError(
            f"tasks: a batch may hold at most {settings.max_batch_tasks} task requests"
            f" (gateway.max_batch_tasks), got {count}; split it into smaller batches",
            details={"field": "tasks", "max_batch_tasks": settings.max_batch_tasks,
                     "count": count})


def _refused(index: int, request_id: str | None, exc: TaskerError) -> ItemResult:
    return ItemResult(index=index, outcome=BatchOutcome.INVALID, request_id=request_id,
                      reason=str(exc), error_code=classify(exc).code)


def _prepare(settings: GatewaySettings, index: int, item: BatchItem, requester: str,
             seen: set[str]) -> _Queued:
    """The queue message of a valid item; TaskerError saying why an item is not one."""
    if item.error is not None:
        raise item.error
    rid = parse_request_id(item.request_id) if item.request_id else str(uuid4())
    if rid in seen:
        raise ValidationError(f"request_id: {rid!r} is given to more than one item of the"
                              " batch", details={"field": "request_id"})
    if item.body is None:
        raise ValidationError("task: the task request is required")
    check_json_input(settings, item.body.context, "context")
    check_json_input(settings, item.body.options, "options")
    request = to_task_request(item.body)
    message = TaskRequestMessage(task_request=request, request_id=rid,
                                 metadata=TaskRequestMetadata(requester=requester[:128]))
    seen.add(rid)
    return _Queued(index=index, request_id=rid, request=request,
                   payload=encode_task_request_message(message))


# One statement, one transaction: every message of the batch, in the batch's order (each with
# its NOTIFY, so the ingestion consumer sees how many wait and splits them over its handler
# tasks).
_SEND_MANY = ("SELECT set_config('synchronous_commit', %s, true),"
              " (SELECT count(tasker.send_v1(%s::text, u.m, %s::jsonb))"
              " FROM unnest(%s::jsonb[]) AS u(m))"
              " AS sent")


def _send_many(conn: Conn, payloads: list[dict[str, object]], headers: Jsonb | None, *,
               durable: bool) -> None:
    """Queue every payload in one statement (run in autocommit: its own transaction), each
    with `headers` (the call's trace context)."""
    conn.execute(_SEND_MANY, ("on" if durable else "off", ORCHESTRATION_TASK_REQUESTS,
                              headers, [Jsonb(p) for p in payloads]))


async def create_tasks(
    ctx: GatewayContext,
    items: Sequence[BatchItem],
    *,
    requester: str,
    wait: bool = True,
    wait_timeout: float | None = None,
    include_tasks: bool = False,
) -> list[ItemResult]:
    """Every item's result, in the order given (created ones with their task view when
    `include_tasks`)."""
    check_batch_size(ctx.settings.gateway, len(items))
    ctx.backpressure.check()
    results: dict[int, ItemResult] = {}
    queued: list[_Queued] = []
    seen: set[str] = set()
    for index, item in enumerate(items):
        try:
            queued.append(_prepare(ctx.settings.gateway, index, item, requester, seen))
        except TaskerError as exc:
            results[index] = _refused(index, item.request_id, exc)
    if queued and not wait:
        await ctx.db.run_autocommit(_send_many, [q.payload for q in queued], trace_headers(),
                                    durable=True)
    elif queued:
        timeout = min(wait_timeout or ctx.settings.gateway.create_wait_timeout_seconds,
                      MAX_WAIT_SECONDS)
        outcomes = await _send_and_wait(ctx, queued, results, trio.current_time() + timeout)
        queued = [q for q in queued if q.index not in results]
        results.update(await _resolve(ctx, queued, outcomes, include_tasks=include_tasks))
    for q in queued:
        results.setdefault(q.index, ItemResult(index=q.index, outcome=BatchOutcome.ACCEPTED,
                                               request_id=q.request_id))
    return [results[i] for i in range(len(items))]


async def _send_and_wait(ctx: GatewayContext, queued: list[_Queued],
                         results: dict[int, ItemResult], deadline: float
                         ) -> dict[str, IngestionOutcome]:
    """Register a waiter per item (an id already in flight refuses that item), send them all,
    wait for every outcome until the deadline; make the send durable before answering."""
    with ExitStack() as stack:
        waiters: dict[str, Waiter] = {}
        for q in queued:
            try:
                waiters[q.request_id] = stack.enter_context(ctx.outcomes.expect(q.request_id))
            except TaskerError as exc:
                results[q.index] = _refused(q.index, q.request_id, exc)
        if not waiters:
            return {}
        await ctx.db.run_autocommit(
            _send_many, [q.payload for q in queued if q.request_id in waiters],
            trace_headers(), durable=False)
        outcomes = await gather_outcomes(ctx, waiters, deadline)
    # Ingestion's commit is durable only when the services commit synchronously.
    if len(outcomes) < len(waiters) or not ctx.settings.database.synchronous_commit:
        await ctx.db.run_autocommit(flush_wal)  # "accepted" must survive a database crash
    return outcomes


def _lookups(conn: Conn, cache: TemplateCache, environment: str,
             duplicates: list[TaskRequest], unknown_code: list[TaskRequest]
             ) -> tuple[list[UUID | None], list[bool]]:
    """The existing task of each duplicate, whether each invalid request's template exists."""
    return ([existing_task(conn, cache, r, environment) for r in duplicates],
            [template_exists(conn, r) for r in unknown_code])


async def _resolve(ctx: GatewayContext, queued: list[_Queued],
                   outcomes: dict[str, IngestionOutcome], *, include_tasks: bool
                   ) -> dict[int, ItemResult]:
    """The results of the items whose outcome is known (the others stay accepted)."""
    known = [(q, outcomes[q.request_id]) for q in queued if q.request_id in outcomes]
    created = [o.task_uuid for _, o in known if o.outcome == "created" and o.task_uuid]
    views = {v.task_uuid: v for v in await ctx.db.run_autocommit(task_views, created)
             } if created and include_tasks else {}
    duplicates = [(q, o) for q, o in known if o.outcome == "duplicate"]
    unknown = [(q, o) for q, o in known if o.outcome == "invalid" and o.error_code is None]
    existing, exists = ([], []) if not (duplicates or unknown) else await ctx.db.run(
        _lookups, ctx.templates, ctx.settings.environment, [q.request for q, _ in duplicates],
        [q.request for q, _ in unknown])
    found = dict(zip((q.index for q, _ in duplicates), existing, strict=True))
    codes = {q.index: "unprocessable" if ok else "not_found"
             for (q, _), ok in zip(unknown, exists, strict=True)}
    results: dict[int, ItemResult] = {}
    for q, o in known:
        rid, i = q.request_id, q.index
        if o.outcome == "created":
            view = views.get(o.task_uuid) if o.task_uuid else None
            results[i] = ItemResult(index=i, outcome=BatchOutcome.CREATED, request_id=rid,
                                    task_uuid=o.task_uuid, task=view)
        elif o.outcome == "duplicate":
            other = found[i]
            reason = o.reason or "a task with the same identity exists"
            results[i] = ItemResult(
                index=i, outcome=BatchOutcome.DUPLICATE, request_id=rid,
                existing_task_uuid=other, error_code="conflict",
                reason=f"{reason}: existing task {other}" if other else reason)
        else:
            code = codes.get(i) or ("unprocessable" if o.error_code == "validation_error"
                                    else o.error_code)
            results[i] = ItemResult(index=i, outcome=BatchOutcome.INVALID, request_id=rid,
                                    reason=o.reason or "the task request was refused",
                                    error_code=code)
    return results
