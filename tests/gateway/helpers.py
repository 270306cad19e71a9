"""Small helpers shared by the gateway tests."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import trio
from grpclib.const import Cardinality, Status
from grpclib.exceptions import GRPCError
from trio_asyncio import aio_as_trio

from tasker_shared.contracts.generated.google.protobuf import Struct
from tasker_shared.contracts.generated.tasker import v1 as pb
from tests.gateway.conftest import LINEAR, Gateway
from tests.support import wait_task


async def grpc_fails(call: Awaitable[Any], status: Status) -> GRPCError:
    with pytest.raises(GRPCError) as info:
        await call
    assert info.value.status is status, info.value
    return info.value


def linear_request(even_number: int = 2, **fields: Any) -> pb.CreateTaskRequest:
    return pb.CreateTaskRequest(task=pb.TaskRequest(
        name="linear_workflow", namespace="examples", version="1.0.0",
        context=Struct.from_dict({"even_number": even_number}), **fields))


def linear_body(even_number: int = 2, **fields: Any) -> dict[str, Any]:
    return {**LINEAR, "context": {"even_number": even_number}, **fields}


async def create_rest(gw: Gateway, body: dict[str, Any] | None = None) -> dict[str, Any]:
    async with gw.http() as http:
        response = await http.post("/v1/tasks", json=body or linear_body())
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def wait_state(gw: Gateway, task_uuid: str, *states: str, seconds: float = 20.0) -> str:
    wanted = set(states) or {"complete"}
    return await trio.to_thread.run_sync(
        lambda: wait_task(gw.db_url, task_uuid, states=wanted, timeout=seconds))


async def until(check: Callable[[], Awaitable[bool]], *, seconds: float = 10.0,
                pause: float = 0.02) -> None:
    """Poll `check` (an outside condition: a table, an HTTP answer) until it holds."""
    for _ in range(int(seconds / pause)):
        if await check():
            return
        await trio.sleep(pause)
    raise AssertionError(f"condition not met within {seconds}s")


def step_uuids(gw: Gateway, task_uuid: str) -> dict[str, str]:
    rows = gw.sql("SELECT name, workflow_step_uuid FROM tasker.get_step_readiness_status_v1(%s)",
                  (task_uuid,))
    return {r["name"]: str(r["workflow_step_uuid"]) for r in rows}


def fail_step(gw: Gateway, step_uuid: str) -> None:
    """Put an enqueued step into `error` (as a permanent failure would)."""
    gw.sql("SELECT tasker.transition_step_v1(%s, ARRAY['enqueued', 'pending'], 'fail', '{}')",
           (step_uuid,))


def open_dlq_entry(gw: Gateway, task_uuid: str) -> str:
    rows = gw.sql("SELECT tasker.create_manual_dlq_entry_v1(%s, 'manual_dlq', 'test', 'tests')"
                  " AS id", (task_uuid,))
    return str(rows[0]["id"])


async def create_with_trailers(rpc: Any, request: pb.CreateTaskRequest
                               ) -> tuple[Status, str, dict[str, Any]]:
    async def go() -> tuple[Status, str, dict[str, Any]]:
        async with rpc.channel.request("/tasker.v1.TaskService/CreateTask",
                                       Cardinality.UNARY_UNARY, pb.CreateTaskRequest,
                                       pb.CreateTaskResponse) as stream:
            await stream.send_message(request, end=True)
            try:
                await stream.recv_message()
                await stream.recv_trailing_metadata()
            except GRPCError as exc:
                return exc.status, exc.message or "", dict(stream.trailing_metadata or {})
            return Status.OK, "", dict(stream.trailing_metadata or {})

    return await aio_as_trio(go)()
