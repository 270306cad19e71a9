"""create_tasks (one CreateTasks call) and create_tasks_concurrently (bounded single creates)
in the three client flavours against the real gateway and ingestion; the fan-out core alone."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import trio
from grpclib.const import Status
from grpclib.exceptions import GRPCError

from tasker_client import (
    AioTaskerClient,
    AuthError,
    RetryPolicy,
    SyncTaskerClient,
    TaskerClient,
    TaskOutcome,
    TaskSpec,
    ValidationError,
)
from tasker_client.config import resolve_config
from tasker_client.core import Call, Connection
from tasker_client.errors import ConflictError
from tasker_client.proto.tasker.v1 import CreateTaskOutcome
from tests.client.conftest import LINEAR, Stack, StackFactory

Out = CreateTaskOutcome
MAX_BATCH = 30


def linear(even: Any, **fields: Any) -> dict[str, Any]:
    return {**LINEAR, "context": {"even_number": even}, **fields}


def mixed(base: int, existing: int) -> list[Any]:
    """created / duplicate of an existing task / refused context / unknown template / a
    TaskSpec created / duplicate of the first item."""
    return [linear(base, request_id=f"c{base}"), linear(existing), linear("two"),
            {"name": "no_such_template", "namespace": "examples"},
            TaskSpec(**linear(base + 2)), linear(base)]


def check(outcomes: tuple[TaskOutcome, ...], base: int, existing_uuid: str, *,
          batch: bool) -> None:
    assert [o.outcome for o in outcomes] == [Out.CREATED, Out.DUPLICATE, Out.INVALID, Out.INVALID,
                                             Out.CREATED, Out.DUPLICATE]
    assert [o.index for o in outcomes] == list(range(6))
    first = outcomes[0]
    assert first.created and first.request_id == f"c{base}" and first.task is not None
    assert first.task.task_uuid == first.task_uuid and first.task.total_steps == 4
    assert outcomes[1].existing_task_uuid == existing_uuid
    assert outcomes[5].existing_task_uuid == first.task_uuid
    assert "even_number" in str(outcomes[2].reason)
    assert "no_such_template" in str(outcomes[3].reason)
    assert outcomes[3].error_code == "not_found"
    # gRPC's INVALID_ARGUMENT does not tell a refused context from a malformed request
    assert outcomes[2].error_code == ("unprocessable" if batch else "validation_error")
    assert all(o.request_id for o in outcomes)


async def test_trio_client_batches_and_concurrent_creates(start_stack: StackFactory) -> None:
    async with start_stack(worker=False, gateway={"max_batch_tasks": MAX_BATCH}) as stack, \
            TaskerClient(stack.address) as client:
        existing = await client.create_task(**linear(1000))
        batch = await client.create_tasks(mixed(10, 1000), include_tasks=True)
        check(batch, 10, str(existing.task_uuid), batch=True)
        fanned = await client.create_tasks_concurrently(mixed(50, 1000), concurrency=3)
        check(fanned, 50, str(existing.task_uuid), batch=False)

        many = await client.create_tasks([linear(10_000 + 2 * i) for i in range(MAX_BATCH)])
        assert [o.outcome for o in many] == [Out.CREATED] * MAX_BATCH
        with pytest.raises(ValidationError, match=f"at most {MAX_BATCH}"):
            await client.create_tasks([linear(2 * i) for i in range(MAX_BATCH + 1)])
        with pytest.raises(ValidationError, match="at least one"):
            await client.create_tasks([])
        with pytest.raises(ValidationError, match=r"tasks\[1\]: unknown field\(s\) contxt"):
            await client.create_tasks([linear(2), {"name": "x", "contxt": {}}])

        lean = await client.create_tasks([linear(400)])  # task_uuids only, by default
        assert lean[0].created and lean[0].task is None and lean[0].task_uuid
        queued = await client.create_tasks([linear(500)], wait=False)
        assert queued[0].outcome is Out.ACCEPTED and queued[0].request_id


async def test_sync_and_asyncio_clients(idle_stack: Stack) -> None:
    def sync() -> tuple[tuple[TaskOutcome, ...], tuple[TaskOutcome, ...]]:
        with SyncTaskerClient(idle_stack.address) as client:
            return (client.create_tasks([linear(2), linear(4), linear(2)]),
                    client.create_tasks_concurrently([linear(6), linear(2)], concurrency=2))

    async def aio() -> tuple[tuple[TaskOutcome, ...], tuple[TaskOutcome, ...]]:
        async with AioTaskerClient(idle_stack.address) as client:
            return (await client.create_tasks([TaskSpec(**linear(8)), linear(10)]),
                    await client.create_tasks_concurrently([linear(12), linear(8)]))

    batch, fanned = await trio.to_thread.run_sync(sync)
    assert [o.outcome for o in batch] == [Out.CREATED, Out.CREATED, Out.DUPLICATE]
    assert batch[2].existing_task_uuid == batch[0].task_uuid
    assert [o.outcome for o in fanned] == [Out.CREATED, Out.DUPLICATE]
    assert fanned[1].existing_task_uuid == batch[0].task_uuid
    batch, fanned = await trio.to_thread.run_sync(lambda: asyncio.run(aio()))
    assert [o.outcome for o in batch] == [Out.CREATED, Out.CREATED]
    assert [o.outcome for o in fanned] == [Out.CREATED, Out.DUPLICATE]
    assert fanned[1].existing_task_uuid == batch[0].task_uuid


def _connection() -> Connection:
    return Connection(resolve_config("127.0.0.1:1", retry=RetryPolicy(max_attempts=1)))


def test_fan_out_bounds_concurrency_and_keeps_refusals_in_place() -> None:
    in_flight, peak = 0, 0

    async def method(request: int, **_: Any) -> int:  # grpclib passes timeout=
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.001 * (request % 3))
        in_flight -= 1
        if request == 7:
            raise GRPCError(Status.ALREADY_EXISTS, "duplicate identity: existing task"
                                                   " 0190a1b2-0000-7000-8000-000000000001")
        return request * 10

    call = Call(service="tasks", method="create_task", request=list(range(20)), timeout=5,
                convert=list, concurrency=4, keep=lambda e: isinstance(e, ConflictError))
    replies = asyncio.run(_connection()._fan_out(method, call))
    assert peak == 4
    assert replies[:7] == [i * 10 for i in range(7)] and replies[8] == 80
    assert isinstance(replies[7], ConflictError)
    assert replies[7].details["existing_task_uuid"] == "0190a1b2-0000-7000-8000-000000000001"


def test_fan_out_raises_other_errors_and_cancels_the_rest() -> None:
    started: list[int] = []
    finished: list[int] = []

    async def method(request: int, **_: Any) -> int:  # grpclib passes timeout=
        started.append(request)
        if request == 2:
            raise GRPCError(Status.UNAUTHENTICATED, "bad token")
        await asyncio.sleep(1 if request else 0)
        finished.append(request)
        return request

    call = Call(service="tasks", method="create_task", request=list(range(10)), timeout=5,
                convert=list, concurrency=3, keep=lambda e: isinstance(e, ConflictError))

    async def run() -> None:
        with pytest.raises(AuthError, match="bad token"):
            await _connection()._fan_out(method, call)

    asyncio.run(run())
    assert finished == [0] and len(started) < 10  # the calls after the failure never ran
