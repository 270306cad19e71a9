"""Batch create (REST POST /v1/tasks/batch, gRPC CreateTasks) against a real gateway and real
ingestion: per-item outcomes, one send statement for the whole batch, bounds, parity."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import pytest
import trio
from grpclib.const import Status

from tasker_gateway.models.tasks import TaskRequestBody
from tasker_gateway.usecases import create, create_batch
from tasker_gateway.usecases.create_batch import BatchItem
from tasker_shared.contracts.generated.google.protobuf import Struct
from tasker_shared.contracts.generated.tasker import v1 as pb
from tasker_shared.db.database import Database
from tests.gateway.conftest import Gateway, grpc_client, running_gateway
from tests.gateway.helpers import grpc_fails, linear_body

MAX_BATCH = 200


@pytest.fixture
async def gw(db_url: str) -> AsyncIterator[Gateway]:
    async with running_gateway(db_url, gateway={"max_batch_tasks": MAX_BATCH}) as gateway:
        yield gateway


def item_pb(body: dict[str, Any], request_id: str | None = None) -> pb.CreateTasksItem:
    fields = {k: v for k, v in body.items() if k not in ("context", "request_id")}
    return pb.CreateTasksItem(
        task=pb.TaskRequest(context=Struct.from_dict(body.get("context", {})), **fields),
        request_id=request_id if request_id is not None else body.get("request_id"))


def mixed(base: int, existing_even: int) -> list[dict[str, Any]]:
    """valid / duplicate of an existing task / context refused by the template / unknown
    template / refused by the gateway / valid / duplicate of the first item / valid."""
    return [
        linear_body(base, request_id=f"m{base}-0"),
        linear_body(existing_even),
        linear_body("two"),  # type: ignore[arg-type]
        {"name": "no_such_template", "namespace": "examples"},
        linear_body(base + 2, priority=101),
        linear_body(base + 4),
        linear_body(base),
        linear_body(base + 6, request_id=f"m{base}-7"),
    ]


EXPECTED = [("created", None), ("duplicate", "conflict"), ("invalid", "unprocessable"),
            ("invalid", "not_found"), ("invalid", "validation_error"), ("created", None),
            ("duplicate", "conflict"), ("created", None)]


def check_mixed(results: list[dict[str, Any]], base: int, existing: str) -> None:
    assert [(r["outcome"], r["error_code"]) for r in results] == EXPECTED, results
    assert [r["index"] for r in results] == list(range(8))
    assert results[0]["request_id"] == f"m{base}-0" and results[7]["request_id"] == f"m{base}-7"
    assert results[1]["existing_task_uuid"] == existing and existing in results[1]["reason"]
    assert results[6]["existing_task_uuid"] == results[0]["task_uuid"]  # same batch
    assert "even_number" in results[2]["reason"]
    assert "no_such_template" in results[3]["reason"]
    assert "priority" in results[4]["reason"] and results[4]["request_id"] is None
    for created in (results[0], results[5], results[7]):
        assert created["task_uuid"] and created["task"]["task_uuid"] == created["task_uuid"]
        assert len(created["task"]["steps"]) == 4


def grpc_results(reply: pb.CreateTasksResponse) -> list[dict[str, Any]]:
    return [{"index": r.index, "outcome": r.outcome.name.lower(), "request_id": r.request_id
             or None, "task_uuid": r.task_uuid, "existing_task_uuid": r.existing_task_uuid,
             "reason": r.reason, "error_code": r.error_code,
             "task": {"task_uuid": r.task.task_uuid, "steps": r.task.steps} if r.task else None}
            for r in reply.results]


async def test_rest_batch_of_200_is_created_with_per_item_outcomes(gw: Gateway) -> None:
    bodies = [linear_body(2 * (i + 1), request_id=f"b-{i}") for i in range(MAX_BATCH)]
    async with gw.http() as http:
        response = await http.post("/v1/tasks/batch?include_tasks=true",
                                   json={"tasks": bodies})
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["index"] for r in results] == list(range(MAX_BATCH))
    assert {r["outcome"] for r in results} == {"created"}
    assert [r["request_id"] for r in results] == [f"b-{i}" for i in range(MAX_BATCH)]
    for i, result in enumerate(results):
        assert result["task"]["context"] == {"even_number": 2 * (i + 1)}
        assert result["task"]["task_uuid"] == result["task_uuid"]
        assert result["task"]["status"] == "steps_in_process"
    rows = gw.sql("SELECT t.task_uuid::text AS id, o.request_id FROM tasker.tasks t"
                  " JOIN tasker.task_request_outcomes o ON o.task_uuid = t.task_uuid")
    assert {(r["id"], r["request_id"]) for r in rows} == {
        (r["task_uuid"], r["request_id"]) for r in results}


async def test_mixed_batch_each_item_answered_on_rest_and_grpc(gw: Gateway) -> None:
    async with gw.http() as http:
        first = await http.post("/v1/tasks", json=linear_body(1000))
        assert first.status_code == 201
        existing = first.json()["task_uuid"]
        response = await http.post("/v1/tasks/batch?include_tasks=true",
                                   json={"tasks": mixed(10, 1000)})
        assert response.status_code == 200, response.text
        check_mixed(response.json()["results"], 10, existing)
        # a body item that is not even an object of known fields is refused on its own
        odd = await http.post("/v1/tasks/batch", json={"tasks": [
            {"nme": "x", "request_id": "odd-1"}, linear_body(20)]})
        assert odd.status_code == 200, odd.text
        bad, good = odd.json()["results"]
        assert (bad["outcome"], bad["error_code"], bad["request_id"]) == (
            "invalid", "validation_error", "odd-1")
        assert "tasks[0]" in bad["reason"] and good["outcome"] == "created"
    async with grpc_client(gw.grpc_port) as rpc:
        reply = await rpc(rpc.tasks.create_tasks, pb.CreateTasksRequest(
            items=[item_pb(body) for body in mixed(50, 1000)], include_tasks=True))
    check_mixed(grpc_results(reply), 50, existing)
    assert reply.results[0].task.total_steps == 4
    assert reply.results[0].outcome is pb.CreateTaskOutcome.CREATED


async def test_request_ids_in_use_are_refused_per_item(gw: Gateway) -> None:
    async with gw.http() as http:
        response = await http.post("/v1/tasks/batch", json={"tasks": [
            linear_body(2, request_id="same"), linear_body(4, request_id="same"),
            linear_body(6, request_id="bad id")]})
    first, second, third = response.json()["results"]
    assert first["outcome"] == "created"
    assert (second["outcome"], second["error_code"]) == ("invalid", "validation_error")
    assert "more than one item" in second["reason"]
    assert (third["outcome"], third["error_code"]) == ("invalid", "validation_error")
    assert "request_id" in third["reason"]


async def test_oversized_and_empty_batches_are_refused_whole(gw: Gateway) -> None:
    bodies = [linear_body(2 * (i + 1)) for i in range(MAX_BATCH + 1)]
    async with gw.http() as http:
        over = await http.post("/v1/tasks/batch", json={"tasks": bodies})
        assert over.status_code == 413, over.text
        error = over.json()["error"]
        assert error["code"] == "payload_too_large"
        assert f"at most {MAX_BATCH}" in error["message"]
        assert "gateway.max_batch_tasks" in error["message"]
        assert error["details"] == {"field": "tasks", "max_batch_tasks": MAX_BATCH,
                                    "count": MAX_BATCH + 1}
        empty = await http.post("/v1/tasks/batch", json={"tasks": []})
        assert empty.status_code == 400 and "tasks" in empty.json()["error"]["message"]
    async with grpc_client(gw.grpc_port) as rpc:
        refused = await grpc_fails(rpc(rpc.tasks.create_tasks, pb.CreateTasksRequest(
            items=[item_pb(b) for b in bodies])), Status.INVALID_ARGUMENT)
        assert f"at most {MAX_BATCH}" in str(refused.message)
        nothing = await grpc_fails(rpc(rpc.tasks.create_tasks, pb.CreateTasksRequest()),
                                   Status.INVALID_ARGUMENT)
        assert "at least one" in str(nothing.message)
    assert gw.sql("SELECT count(*) AS n FROM tasker.tasks")[0]["n"] == 0


async def test_no_wait_answers_accepted_and_ingestion_creates_them(gw: Gateway) -> None:
    async with grpc_client(gw.grpc_port) as rpc:
        reply = await rpc(rpc.tasks.create_tasks, pb.CreateTasksRequest(
            items=[item_pb(linear_body(2 * i), request_id=f"nw-{i}") for i in range(1, 6)],
            wait=False))
    assert [r.outcome for r in reply.results] == [pb.CreateTaskOutcome.ACCEPTED] * 5
    assert [r.request_id for r in reply.results] == [f"nw-{i}" for i in range(1, 6)]
    async with gw.http() as http:
        for i in range(1, 6):
            for _ in range(500):
                outcome = await http.get(f"/v1/task_requests/nw-{i}")
                if outcome.status_code == 200:
                    break
                await trio.sleep(0.02)
            assert outcome.json()["outcome"] == "created"


async def test_created_items_are_answered_with_task_uuids_unless_views_are_asked(
        gw: Gateway) -> None:
    """By default (and with include_tasks=false) a created item carries its task_uuid
    only: no task view is read, converted and sent for each item of a large batch."""
    async with gw.http() as http:
        response = await http.post("/v1/tasks/batch",
                                   json={"tasks": [linear_body(2), linear_body(4)]})
        explicit = await http.post("/v1/tasks/batch?include_tasks=false",
                                   json={"tasks": [linear_body(8)]})
    rest = response.json()["results"] + explicit.json()["results"]
    assert [(r["outcome"], r["task"]) for r in rest] == [("created", None)] * 3
    async with grpc_client(gw.grpc_port) as rpc:
        reply = await rpc(rpc.tasks.create_tasks, pb.CreateTasksRequest(
            items=[item_pb(linear_body(6))]))
    assert reply.results[0].outcome is pb.CreateTaskOutcome.CREATED
    assert reply.results[0].task is None
    uuids = {r["task_uuid"] for r in rest} | {reply.results[0].task_uuid}
    rows = gw.sql("SELECT task_uuid::text AS id FROM tasker.tasks")
    assert {r["id"] for r in rows} == uuids


class SendSpy:
    """The gateway's Database, counting the calls that send requests and flush the WAL."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self.sends: list[int] = []
        self.flushes = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._db, name)

    async def run_autocommit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        if fn is create_batch._send_many:
            self.sends.append(len(args[0]))
        elif fn is create.flush_wal:
            self.flushes += 1
        return await self._db.run_autocommit(fn, *args, **kwargs)


def items(count: int, start: int = 1) -> list[BatchItem]:
    return [BatchItem(body=TaskRequestBody.model_validate(linear_body(2 * i)))
            for i in range(start, start + count)]


async def test_one_statement_sends_the_batch(gw: Gateway) -> None:
    spy = SendSpy(gw.ctx.db)
    ctx = replace(gw.ctx, db=spy)
    results = await create_batch.create_tasks(ctx, items(50), requester="test")
    assert {r.outcome for r in results} == {"created"}
    assert spy.sends == [50]
    # synchronous commits (the default): ingestion's commit made the send durable
    assert spy.flushes == (0 if gw.settings.database.synchronous_commit else 1)


async def test_without_ingestion_items_are_accepted_and_flushed_once(db_url: str) -> None:
    async with running_gateway(db_url, ingestion=False) as gw:
        spy = SendSpy(gw.ctx.db)
        ctx = replace(gw.ctx, db=spy)
        results = await create_batch.create_tasks(ctx, items(3), requester="test",
                                                  wait_timeout=0.2)
        assert [r.outcome for r in results] == ["accepted"] * 3
        assert all(r.request_id for r in results)
        assert spy.sends == [3] and spy.flushes == 1
        queued = gw.sql("SELECT count(*) AS n FROM pgmq.q_orchestration_task_requests")
        assert queued[0]["n"] == 3
