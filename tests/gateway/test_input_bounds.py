"""Free-form JSON in requests (contexts, options, manual results, metadata) is bounded in
depth and size on every gateway entry point: REST bodies of any depth answer a clear 413
quickly (never a RecursionError or a 500), the configured limits apply to REST and gRPC
alike, and a refused request queues nothing."""

from __future__ import annotations

from typing import Any

from grpclib.const import Status

from tasker_gateway.outcomes import OUTCOME_CHANNEL
from tasker_gateway.streams import STEP_EVENTS_CHANNEL, TASK_EVENTS_CHANNEL
from tasker_shared.contracts.generated.google.protobuf import Struct
from tasker_shared.contracts.generated.tasker import v1 as pb
from tests.gateway.conftest import Gateway, grpc_client, running_gateway
from tests.gateway.helpers import (
    create_rest,
    grpc_fails,
    linear_body,
    linear_request,
    open_dlq_entry,
    step_uuids,
    until,
)


def nested(depth: int) -> Any:
    """A JSON value `depth` levels deep ({"a": {"a": ... 1}})."""
    value: Any = 1
    for _ in range(depth):
        value = {"a": value}
    return value


def queued(gw: Gateway) -> int:
    return int(gw.sql("SELECT count(*) AS n FROM pgmq.q_orchestration_task_requests")[0]["n"])


def refused(response: Any, *phrases: str) -> None:
    assert response.status_code == 413, response.text
    error = response.json()["error"]
    assert error["code"] == "payload_too_large"
    for phrase in phrases:
        assert phrase in error["message"], error["message"]


async def test_rest_bodies_of_any_depth_get_a_clear_answer(gw: Gateway) -> None:
    task = (await create_rest(gw))["task_uuid"]
    step = step_uuids(gw, task)["linear_step_1"]
    entry = open_dlq_entry(gw, task)
    before = queued(gw)
    deep = "[" * 100_000 + "]" * 100_000
    bodies = {
        ("POST", "/v1/tasks"):
            '{"name": "linear_workflow", "namespace": "examples", "context": {"x": %s}}',
        ("PATCH", f"/v1/tasks/{task}/workflow_steps/{step}"):
            '{"action_type": "complete_manually", "reason": "r", "completed_by": "ops",'
            ' "completion_data": {"result": {"x": %s}}}',
        ("PATCH", f"/v1/dlq/entry/{entry}"): '{"metadata": {"x": %s}}',
    }
    async with gw.http() as http:
        for (method, path), template in bodies.items():
            for value in (deep, '{"a": ' * 150 + "1" + "}" * 150):
                response = await http.request(method, path, content=template % value,
                                              headers={"content-type": "application/json"})
                refused(response, "nest")
        assert (await http.get("/health/ready")).status_code == 200
        still = await http.get(f"/v1/tasks/{task}/workflow_steps/{step}")
        assert still.json()["current_state"] != "complete"
    assert queued(gw) == before


async def test_context_past_the_depth_limit_is_refused_by_name(gw: Gateway) -> None:
    before = queued(gw)
    async with gw.http() as http:
        deep = await http.post("/v1/tasks", json=linear_body(context=nested(65)))
        refused(deep, "context nests deeper than 64 levels")
        options = await http.post("/v1/tasks", json=linear_body(options=nested(70)))
        refused(options, "options nests deeper than 64")
    assert queued(gw) == before


async def test_configured_limits_apply_to_rest_and_grpc(db_url: str) -> None:
    limits = {"max_json_depth": 4, "max_json_bytes": 2048}
    async with running_gateway(db_url, gateway=limits) as gw:
        async with gw.http() as http:
            refused(await http.post("/v1/tasks", json=linear_body(context=nested(5))),
                    "context nests deeper than 4 levels")
            big = {"even_number": 2, "blob": "x" * 3000}
            refused(await http.post("/v1/tasks", json=linear_body(context=big)),
                    "context is", "at most 2048 are allowed")
            fine = await http.post("/v1/tasks", json=linear_body(
                context={"even_number": 2, "deep": nested(3)}))
            assert fine.status_code == 201, fine.text
        task = fine.json()["task_uuid"]
        step = step_uuids(gw, task)["linear_step_1"]
        async with grpc_client(gw.grpc_port) as rpc:
            request = linear_request()
            request.task.context = Struct.from_dict({"even_number": 2, "deep": nested(5)})
            error = await grpc_fails(rpc(rpc.tasks.create_task, request),
                                     Status.INVALID_ARGUMENT)
            assert "context nests deeper than 4 levels" in (error.message or "")
            resolve = pb.ResolveStepRequest(
                task_uuid=task, step_uuid=step, action=pb.ResolutionStrategy.COMPLETE_MANUALLY,
                reason="r", actor="ops", result=Struct.from_dict({"deep": nested(5)}))
            error = await grpc_fails(rpc(rpc.steps.resolve_step, resolve),
                                     Status.INVALID_ARGUMENT)
            assert "completion_data.result nests deeper than 4" in (error.message or "")
        async with gw.http() as http:
            still = await http.get(f"/v1/tasks/{task}/workflow_steps/{step}")
            assert still.json()["current_state"] != "complete"


async def test_undecodable_notifications_are_ignored(gw: Gateway) -> None:
    """Any database role may NOTIFY the gateway's channels; a payload nested too deeply to
    decode is counted as malformed, and the gateway keeps serving."""
    deep = "[" * 3900 + "]" * 3900  # NOTIFY payloads stop at 8,000 bytes
    for channel in (OUTCOME_CHANNEL, TASK_EVENTS_CHANNEL, STEP_EVENTS_CHANNEL):
        gw.sql("SELECT pg_notify(%s, %s)", (channel, deep))

    async def counted() -> bool:
        return gw.ctx.outcomes.malformed >= 1

    await until(counted)
    created = await create_rest(gw)  # 201: the outcome of a real request still arrives
    assert created["name"] == "linear_workflow"
