"""REST GET /v1/tasks/{task_uuid}/stream: server-sent events carrying exactly the updates
gRPC StreamTaskStatus carries for the same task (one TaskWatch, one NOTIFY fan-out), ending
after the closing update; an `end` event when the gateway drains; 404 for an unknown task."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import jsonschema
import trio
from trio_asyncio import aio_as_trio

from tasker_finalizer.service import serve as serve_finalizer
from tasker_gateway.rest.app import openapi_document
from tasker_results.service import serve as serve_results
from tasker_shared.contracts.generated.tasker import v1 as pb
from tests.gateway.conftest import (
    LINEAR,
    Gateway,
    gateway_settings,
    grpc_client,
    running_gateway,
)

STEPS = [f"linear_step_{i}" for i in range(1, 5)]


@asynccontextmanager
async def no_worker(db_url: str) -> AsyncIterator[Gateway]:
    """Gateway, ingestion, result processing and finalization, but no worker: steps move
    only when an operator completes them."""
    settings = gateway_settings(db_url)
    async with trio.open_nursery() as nursery:
        for serve in (serve_results, serve_finalizer):
            await nursery.start(serve, settings)
        async with running_gateway(db_url, settings=settings) as gw:
            yield gw
        nursery.cancel_scope.cancel()


async def read_sse(gw: Gateway, path: str, into: list[dict[str, Any]]) -> None:
    """Parse the event stream at `path` into `into` until it ends."""
    async with gw.http() as http, http.stream("GET", path) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        event: dict[str, Any] = {}
        async for line in response.aiter_lines():
            if line.startswith(":"):
                continue
            if not line:
                if event:
                    into.append(event)
                event = {}
                continue
            key, _, value = line.partition(": ")
            event[key] = json.loads(value) if key == "data" else value


def check_against_document(events: list[dict[str, Any]]) -> None:
    """Every event as the OpenAPI document describes it: {event, id, data} whose data is
    JSON of the StreamEvent schema."""
    document = openapi_document()
    response = document["paths"]["/v1/tasks/{task_uuid}/stream"]["get"]["responses"]["200"]
    schema = response["content"]["text/event-stream"]["schema"]
    data_schema = {**schema["properties"]["data"]["contentSchema"],
                   "components": document["components"]}
    for event in events:
        raw = {k: json.dumps(v) if k == "data" else v for k, v in event.items()}
        jsonschema.validate(raw, schema)
        jsonschema.validate(event["data"], data_schema)


def _key(update: dict[str, Any]) -> tuple[Any, ...]:
    return (update["update_type"], update.get("step_name"), update.get("step_state"),
            update.get("previous_step_state"), update.get("task_state"),
            update.get("previous_task_state"))


def _grpc_key(update: pb.TaskStatusUpdate) -> tuple[Any, ...]:
    def state(member: Any) -> str | None:
        return member.name.lower() if member else None

    return (update.update_type.name.lower(), update.step_name or None,
            state(update.step_state), state(update.previous_step_state),
            state(update.task_state), state(update.previous_task_state))


async def until(predicate: Any, seconds: float = 20.0) -> None:
    """Poll: one of the lists is filled from the asyncio side (grpclib)."""
    with trio.fail_after(seconds):
        while not predicate():  # noqa: ASYNC110
            await trio.sleep(0.02)


async def test_sse_carries_the_grpc_updates(db_url: str) -> None:
    async with no_worker(db_url) as gw, grpc_client(gw.grpc_port) as rpc:
        async with gw.http() as http:
            made = await http.post("/v1/tasks", json=LINEAR)
            assert made.status_code == 201, made.text
            task = made.json()["task_uuid"]
            missing = await http.get("/v1/tasks/01a24eb1-cefb-7e57-96db-55c34ca4b543/stream")
            assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
            steps = {r["name"]: r["step_uuid"] for r in (
                await http.get(f"/v1/tasks/{task}/workflow_steps")).json()}
        events: list[dict[str, Any]] = []
        grpc_updates: list[pb.TaskStatusUpdate] = []

        async def watch_grpc() -> None:
            async def collect() -> None:
                request = pb.StreamTaskStatusRequest(task_uuid=task, include_steps=True)
                async for update in rpc.tasks.stream_task_status(request):
                    grpc_updates.append(update)

            await aio_as_trio(collect)()

        async def drive() -> None:
            async with gw.http() as http:
                for name in STEPS:
                    done = await http.patch(
                        f"/v1/tasks/{task}/workflow_steps/{steps[name]}", json={
                            "action_type": "complete_manually", "reason": "by hand",
                            "completed_by": "ops", "completion_data": {"result": {"n": 1}}})
                    assert done.status_code == 200, done.text

        with trio.fail_after(40):  # both streams end by themselves after the closing update
            async with trio.open_nursery() as nursery:
                nursery.start_soon(read_sse, gw, f"/v1/tasks/{task}/stream", events)
                nursery.start_soon(watch_grpc)
                # Both have their snapshot (the task, then its four steps) before anything
                # moves.
                await until(lambda: len(events) >= 5 and len(grpc_updates) >= 5)
                await drive()
        check_against_document(events)
        updates = [e["data"] for e in events]
        assert [e["event"] for e in events] == [u["update_type"] for u in updates]
        assert [int(e["id"]) for e in events] == list(range(1, len(events) + 1))
        assert updates[-1]["update_type"] == "task_complete"
        assert updates[-1]["task_state"] == "complete"
        completed = {u["step_name"] for u in updates if u.get("step_state") == "complete"}
        assert completed == set(STEPS)
        assert [_key(u) for u in updates] == [_grpc_key(u) for u in grpc_updates]


async def test_a_draining_gateway_ends_the_stream(db_url: str) -> None:
    async with running_gateway(db_url) as gw:
        async with gw.http() as http:
            task = (await http.post("/v1/tasks", json=LINEAR)).json()["task_uuid"]
        events: list[dict[str, Any]] = []
        async with trio.open_nursery() as nursery:
            nursery.start_soon(read_sse, gw, f"/v1/tasks/{task}/stream?include_steps=false",
                               events)
            await until(lambda: len(events) >= 1)
            gw.runtime.state = "draining"
            try:
                with trio.fail_after(10):
                    await until(lambda: events[-1]["event"] == "end")
            finally:
                gw.runtime.state = "normal"
        assert [e["event"] for e in events] == ["task_state_change", "end"]
        check_against_document(events)
        assert events[0]["data"]["task_uuid"] == task
