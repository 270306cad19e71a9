"""The gateway's share of observability, against known workloads: one trace runs from the
caller's `traceparent` (REST header or gRPC metadata) through the gateway's span, ingestion,
workers and result processing; every request gets a span; a gRPC call its client abandons
counts as CANCELLED (not UNKNOWN); the worker counts the messages it consumes; an empty
batch is no handler duration."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import trio
from grpclib.const import Cardinality
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind
from trio_asyncio import aio_as_trio

from tasker_shared.contracts.generated.tasker import v1 as pb
from tasker_shared.db.database import Conn, Database
from tasker_shared.queue.consumer import ConsumerCounters
from tasker_shared.queue.processor import Envelope, TransactionalProcessor
from tasker_shared.runtime import tracing
from tasker_shared.runtime.metrics import REGISTRY
from tests.gateway.conftest import LINEAR, gateway_settings, grpc_client, running_gateway
from tests.support import wait_task

TRACED = {"tracing_enabled": True, "exporter": "memory"}
GRPC_CREATE = "tasker.v1.TaskService/CreateTask"


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def _spans_of(trace_id: int, done: Callable[[list[ReadableSpan]], bool]
                    ) -> list[ReadableSpan]:
    exporter = tracing.memory_exporter()
    assert exporter is not None
    deadline = time.monotonic() + 15
    while True:
        spans = [s for s in exporter.get_finished_spans()
                 if s.context is not None and s.context.trace_id == trace_id]
        if done(spans) or time.monotonic() > deadline:
            return spans
        await trio.sleep(0.05)


def _chain(spans: list[ReadableSpan], leaf: ReadableSpan) -> list[str]:
    """Span names from `leaf` up to the trace's root (every parent must be in the trace)."""
    by_id = {s.context.span_id: s for s in spans if s.context is not None}
    names, node = [leaf.name], leaf
    while node.parent is not None and node.parent.span_id in by_id:
        node = by_id[node.parent.span_id]
        names.append(node.name)
    return names


def _check_trace(spans: list[ReadableSpan], server: str, root: Any) -> None:
    """One trace: the caller's span -> the gateway's SERVER span -> ingestion -> the four
    steps' worker spans (and result processing's, where it runs as a hop of its own); no span
    points at a parent outside the trace."""
    names = [s.name for s in spans]
    (gateway,) = [s for s in spans if s.name == server]
    assert gateway.kind is SpanKind.SERVER
    assert gateway.parent is not None
    assert gateway.parent.span_id == root.get_span_context().span_id
    (ingestion,) = [s for s in spans if s.name == "ingestion.task_request"]
    assert ingestion.parent is not None and ingestion.parent.span_id == gateway.context.span_id
    assert names.count("worker.execute_step") == 4
    ids = {s.context.span_id for s in spans if s.context is not None}
    for s in spans:  # the caller's span (exported by this process too) is the only root
        if s.parent is None:
            assert s.context is not None
            assert s.context.span_id == root.get_span_context().span_id, s.name
        else:
            assert s.parent.span_id in ids, s.name
    last_step = max((s for s in spans if s.name == "worker.execute_step"),
                    key=lambda s: s.start_time or 0)
    chain = _chain(spans, last_step)
    assert chain[-3:] == ["ingestion.task_request", server, root.name], chain
    assert chain.count("worker.execute_step") == 4, chain


async def test_one_trace_from_the_callers_traceparent(db_url: str) -> None:
    settings = gateway_settings(db_url, telemetry=TRACED)
    try:
        async with running_gateway(db_url, pipeline=True, settings=settings) as gw, \
                grpc_client(gw.grpc_port) as rpc, gw.http() as http:
            with tracing.span("client.rest_call", kind=SpanKind.CLIENT) as rest_root:
                headers = tracing.inject_headers({})
            made = await http.post("/v1/tasks", json=LINEAR, headers=headers)
            assert made.status_code == 201, made.text
            assert await trio.to_thread.run_sync(wait_task, db_url,
                                                 made.json()["task_uuid"]) == "complete"
            spans = await _spans_of(rest_root.get_span_context().trace_id, lambda found: sum(
                s.name == "worker.execute_step" for s in found) >= 4)
            _check_trace(spans, "POST /v1/tasks", rest_root)
            (server,) = [s for s in spans if s.name == "POST /v1/tasks"]
            assert server.attributes is not None
            assert server.attributes["http.route"] == "/v1/tasks"
            assert server.attributes["http.response.status_code"] == 201

            with tracing.span("client.grpc_call", kind=SpanKind.CLIENT) as grpc_root:
                metadata = tracing.inject_headers({})
            reply = await rpc(rpc.tasks.create_task, pb.CreateTaskRequest(
                task=pb.TaskRequest(name="linear_workflow", namespace="examples",
                                    version="1.0.0"), context_json='{"even_number": 4}'),
                metadata=metadata)
            assert await trio.to_thread.run_sync(wait_task, db_url, reply.task_uuid
                                                 ) == "complete"
            spans = await _spans_of(grpc_root.get_span_context().trace_id, lambda found: sum(
                s.name == "worker.execute_step" for s in found) >= 4)
            _check_trace(spans, GRPC_CREATE, grpc_root)
            (server,) = [s for s in spans if s.name == GRPC_CREATE]
            assert server.attributes is not None and server.attributes["rpc.grpc.status_code"] == 0

            # Every request gets a span, a new trace without a traceparent.
            assert (await http.get("/health")).status_code == 200
            assert (await http.get("/no/such/route")).status_code == 404
            exporter = tracing.memory_exporter()
            assert exporter is not None
            deadline = time.monotonic() + 5
            while True:
                finished = {s.name: s for s in exporter.get_finished_spans()}
                if {"GET /health", "GET unmatched"} <= set(finished) or \
                        time.monotonic() > deadline:
                    break
                await trio.sleep(0.05)
            assert finished["GET /health"].parent is None
            assert finished["GET unmatched"].attributes is not None
            assert finished["GET unmatched"].attributes["http.response.status_code"] == 404
    finally:
        tracing.shutdown_tracing()


async def test_a_cancelled_grpc_call_is_labelled_cancelled(db_url: str) -> None:
    method = "/tasker.v1.TaskService/StreamTaskStatus"
    before = {status: _sample("tasker_gateway_requests_total", transport="grpc",
                              operation=method, status=status)
              for status in ("CANCELLED", "UNKNOWN")}
    async with running_gateway(db_url) as gw, grpc_client(gw.grpc_port) as rpc:
        async with gw.http() as http:  # no worker: the task never finishes
            task = (await http.post("/v1/tasks", json=LINEAR)).json()["task_uuid"]
        async def first_update_then_cancel() -> None:
            async with rpc.channel.request(method, Cardinality.UNARY_STREAM,
                                           pb.StreamTaskStatusRequest,
                                           pb.TaskStatusUpdate) as stream:
                await stream.send_message(pb.StreamTaskStatusRequest(task_uuid=task),
                                          end=True)
                assert await stream.recv_message() is not None
                await stream.cancel()  # RST_STREAM: the client abandons the call

        await aio_as_trio(first_update_then_cancel)()
        with trio.fail_after(10):
            while _sample("tasker_gateway_requests_total", transport="grpc",  # noqa: ASYNC110
                          operation=method, status="CANCELLED") == before["CANCELLED"]:
                await trio.sleep(0.05)
    assert _sample("tasker_gateway_requests_total", transport="grpc", operation=method,
                   status="CANCELLED") == before["CANCELLED"] + 1
    assert _sample("tasker_gateway_requests_total", transport="grpc", operation=method,
                   status="UNKNOWN") == before["UNKNOWN"]


async def test_worker_counts_the_messages_it_consumes(db_url: str) -> None:
    queue = "worker_examples_queue"
    before = _sample("tasker_messages_consumed_total", queue=queue)
    async with running_gateway(db_url, pipeline=True) as gw, gw.http() as http:
        made = [await http.post("/v1/tasks", json={**LINEAR, "context": {"even_number": n}})
                for n in (2, 4)]
        for response in made:
            assert response.status_code == 201, response.text
            assert await trio.to_thread.run_sync(wait_task, db_url,
                                                 response.json()["task_uuid"]) == "complete"
    # Two linear tasks: four steps each, every one run once.
    assert _sample("tasker_messages_consumed_total", queue=queue) - before == 8


async def test_empty_batches_are_not_timed(db: Database) -> None:
    queue = "probe_durations"
    await db.run_autocommit(lambda conn: conn.execute(
        "SELECT tasker.ensure_queue_v1(%s)", (queue,)))

    def handle(conn: Conn, batch: list[Envelope[int]]) -> None:
        return None

    processor = TransactionalProcessor(db=db, queue=queue, decode=lambda m: int(m["n"]),
                                       handle=handle, counters=ConsumerCounters(), max_reads=3)

    def count() -> float:
        return _sample("tasker_message_handler_duration_seconds_count", queue=queue)

    before = count()
    assert await processor(None, 10) == 0
    assert count() == before  # nothing was handled: no duration to observe
    await db.run_autocommit(lambda conn: conn.execute(
        "SELECT tasker.send_v1(%s, '{\"n\": 1}'::jsonb)", (queue,)))
    assert await processor(None, 10) == 1
    assert count() == before + 1
