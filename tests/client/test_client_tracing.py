"""An application that traces with OpenTelemetry gets one trace from its own span through the
client's call, the gateway, ingestion and the workers: the client sends the caller's
`traceparent` with each call (taken where the call is made, whatever the flavour)."""

from __future__ import annotations

import time

import trio
from opentelemetry.trace import SpanKind

from tasker_client import SyncTaskerClient, TaskerClient
from tasker_client.core import caller_trace
from tasker_shared.runtime import tracing
from tests.client.conftest import LINEAR, StackFactory

TRACED = {"tracing_enabled": True, "exporter": "memory"}


async def _names_under(trace_id: int, *, until: str) -> dict[str, list[int | None]]:
    """Span name -> parent span ids of the finished spans of one trace."""
    exporter = tracing.memory_exporter()
    assert exporter is not None
    deadline = time.monotonic() + 15
    while True:
        found: dict[str, list[int | None]] = {}
        for s in exporter.get_finished_spans():
            if s.context is not None and s.context.trace_id == trace_id:
                found.setdefault(s.name, []).append(s.parent.span_id if s.parent else None)
        if until in found or time.monotonic() > deadline:
            return found
        await trio.sleep(0.05)


async def test_client_calls_continue_the_callers_trace(start_stack: StackFactory) -> None:
    try:
        async with start_stack(telemetry=TRACED) as stack:
            async with TaskerClient(stack.address) as client:
                with tracing.span("app.submit", kind=SpanKind.INTERNAL) as app:
                    assert dict(caller_trace())["traceparent"].split("-")[2] == format(
                        app.get_span_context().span_id, "016x")
                    created = await client.create_task(**LINEAR, context={"even_number": 2})
            trace_id = app.get_span_context().trace_id
            spans = await _names_under(trace_id, until="worker.execute_step")
            assert spans["tasker.v1.TaskService/CreateTask"] == [
                app.get_span_context().span_id]
            assert len(spans["ingestion.task_request"]) == 1
            assert created.task_uuid

            def sync_call() -> int:
                with SyncTaskerClient(stack.address) as sync_client, \
                        tracing.span("app.lookup") as lookup:
                    sync_client.get_task(created.task_uuid)
                    return lookup.get_span_context().trace_id

            lookup_trace = await trio.to_thread.run_sync(sync_call)
            spans = await _names_under(lookup_trace, until="tasker.v1.TaskService/GetTask")
            assert len(spans["tasker.v1.TaskService/GetTask"]) == 1
    finally:
        tracing.shutdown_tracing()
