"""Metrics and traces of the whole pipeline run in-process: /metrics shows the named series
with the values a known workload produces; one task's spans across ingestion, worker,
result processing and finalization form one trace with intact parent links."""

from __future__ import annotations

import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg
import trio
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind
from prometheus_client.parser import text_string_to_metric_families
from psycopg.types.json import Jsonb

from tasker_finalizer.service import serve as serve_finalizer
from tasker_ingestion.service import serve as serve_ingestion
from tasker_results.service import serve as serve_results
from tasker_shared.runtime import tracing
from tasker_shared.runtime.metrics import REGISTRY
from tasker_shared.store import dlq
from tasker_worker.examples import templates_dir
from tasker_worker.service import serve as serve_worker
from tests.support import EXAMPLES, outcome, service_settings, submit, wait_task

DOOMED = """
name: doomed_workflow
namespace_name: examples
version: "1.0.0"
description: The second step never succeeds within its two attempts
steps:
  - name: doomed_fetch
    handler: {callable: examples.square}
  - name: doomed_call
    dependencies: [doomed_fetch]
    retry: {retryable: true, max_attempts: 2}
    handler:
      callable: examples.flaky
      initialization: {parent: doomed_fetch, succeed_on_attempt: 99}
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@asynccontextmanager
async def _run_pipeline(db_url: str, tmp_path: Path, **overrides: Any) -> AsyncIterator[int]:
    (tmp_path / "doomed.yaml").write_text(DOOMED, encoding="utf-8")
    port = _free_port()
    base = {"worker": {"namespaces": ["examples"], "handler_modules": [EXAMPLES],
                       "template_paths": [str(templates_dir()), str(tmp_path)]},
            "service": {"metrics_sample_interval_seconds": 0.1}, **overrides}
    settings = service_settings(db_url, **base)
    with_port = service_settings(db_url, **{**base, "service": {
        "metrics_sample_interval_seconds": 0.1, "health_port": port,
        "health_host": "127.0.0.1"}})
    async with trio.open_nursery() as nursery:
        await nursery.start(serve_worker, settings)  # registers the templates first
        for serve in (serve_ingestion, serve_results):
            await nursery.start(serve, settings)
        await nursery.start(serve_finalizer, with_port)
        yield port
        nursery.cancel_scope.cancel()


SERIES = [
    ("tasker_messages_consumed_total", {"queue": "orchestration_task_requests"}),
    ("tasker_messages_consumed_total", {"queue": "orchestration_step_results"}),
    ("tasker_step_results_total", {"namespace": "examples", "outcome": "success"}),
    ("tasker_step_results_total", {"namespace": "examples", "outcome": "failure"}),
    ("tasker_step_retries_total", {"namespace": "examples"}),
    ("tasker_tasks_finished_total", {"state": "complete"}),
    ("tasker_tasks_finished_total", {"state": "error"}),
    ("tasker_dlq_entries_total", {"reason": "max_retries_exceeded"}),
    ("tasker_transitions_total", {"kind": "step", "to_state": "complete"}),
    ("tasker_transitions_total", {"kind": "step", "to_state": "waiting_for_retry"}),
    ("tasker_transitions_total", {"kind": "step", "to_state": "error"}),
    ("tasker_step_handler_duration_seconds_count",
     {"namespace": "examples", "handler": "examples.square"}),
    ("tasker_step_handler_duration_seconds_count",
     {"namespace": "examples", "handler": "examples.flaky"}),
    ("tasker_messages_failed_total", {"queue": "orchestration_step_results"}),
    ("tasker_transitions_total", {"kind": "task", "to_state": "complete"}),
    ("tasker_transitions_total", {"kind": "task", "to_state": "error"}),
]
# 2 linear (4 steps), 1 flaky (3 steps, 2 retries), 1 doomed (2 steps, 1 retry, then error).
# Only the 4 failures reach result processing: a success is applied by its record.
EXPECTED_DELTAS = [4, 4, 12, 4, 3, 3, 1, 1, 12, 3, 1, 10, 5, 0, 3, 1]


def _scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    body = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    out = {}
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def _value(samples: dict[Any, float], name: str, labels: dict[str, str]) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def _snapshot() -> list[float]:
    return [REGISTRY.get_sample_value(name, labels) or 0.0 for name, labels in SERIES]


async def test_metrics_after_a_known_workload(db_url: str, tmp_path: Path) -> None:
    before = _snapshot()
    with psycopg.connect(db_url, autocommit=True) as conn:  # a queue nobody consumes
        conn.execute("SELECT tasker.ensure_queue_v1('worker_idle_queue')")
        for i in range(3):
            conn.execute("SELECT tasker.send_v1('worker_idle_queue', %s)", (Jsonb({"n": i}),))
    async with _run_pipeline(db_url, tmp_path) as port:
        requests = [submit(db_url, "linear_workflow", {"even_number": 2}),
                    submit(db_url, "linear_workflow", {"even_number": 4}),
                    submit(db_url, "flaky_workflow", {"even_number": 2}),
                    submit(db_url, "doomed_workflow", {"even_number": 2})]
        tasks = [(await trio.to_thread.run_sync(outcome, db_url, r))["task_uuid"]
                 for r in requests]
        states = [await trio.to_thread.run_sync(wait_task, db_url, t) for t in tasks]
        assert states == ["complete", "complete", "complete", "error"]
        deadline = trio.current_time() + 10
        while True:  # the gauges are sampled; the counters settle with the last message
            samples = await trio.to_thread.run_sync(_scrape, port)
            deltas = [_value(samples, n, lb) - b for (n, lb), b in zip(SERIES, before,
                                                                        strict=True)]
            depth = _value(samples, "tasker_queue_depth", {"queue": "worker_idle_queue"})
            results_depth = _value(samples, "tasker_queue_depth",
                                   {"queue": "orchestration_step_results"})
            if (deltas == EXPECTED_DELTAS and depth == 3 and results_depth == 0) \
                    or trio.current_time() > deadline:
                break
            await trio.sleep(0.05)
        assert dict(zip([f"{n}{lb}" for n, lb in SERIES], deltas, strict=True)) == dict(
            zip([f"{n}{lb}" for n, lb in SERIES], EXPECTED_DELTAS, strict=True))
        assert depth == 3
        assert _value(samples, "tasker_queue_oldest_message_age_seconds",
                      {"queue": "worker_idle_queue"}) > 0
        assert _value(samples, "tasker_queue_depth",
                      {"queue": "orchestration_step_results"}) == 0
        assert _value(samples, "tasker_circuit_breaker_state", {"name": "database"}) == 0
        assert _value(samples, "tasker_circuit_breaker_state", {"name": "queue"}) == 0
        assert _value(samples, "tasker_db_pool_connections", {"state": "max"}) == 4
        assert _value(samples, "tasker_message_handler_duration_seconds_count",
                      {"queue": "orchestration_task_requests"}) >= 1
        with psycopg.connect(db_url, autocommit=True,
                             row_factory=psycopg.rows.dict_row) as conn:
            entry = dlq.entry_by_task(conn, tasks[3])
        assert entry is not None and entry["dlq_reason"] == "max_retries_exceeded"
        assert entry["original_state"] == "blocked_by_failures"
        health = await trio.to_thread.run_sync(
            lambda: httpx.get(f"http://127.0.0.1:{port}/health/detailed", timeout=5).json())
        assert health["status"] == "healthy"
        details = health["details"]
        assert set(details["circuit_breakers"]) == {"database", "queue"}
        assert details["circuit_breakers"]["database"]["state"] == "closed"
        assert details["operational_state"] == "normal"
        assert details["staleness"]["enabled"] is True
        assert health["checks"]["circuit_breakers"] == {
            "status": "healthy", "message": "database:closed,queue:closed", "duration_ms": 0}


def _by_id(spans: list[ReadableSpan]) -> dict[int, ReadableSpan]:
    return {s.context.span_id: s for s in spans if s.context is not None}


async def test_one_task_one_trace_across_services(db_url: str, tmp_path: Path) -> None:
    try:
        async with _run_pipeline(db_url, tmp_path, telemetry={
                "tracing_enabled": True, "exporter": "memory"}):
            exporter = tracing.memory_exporter()
            assert exporter is not None
            with tracing.span("gateway.create_task", kind=SpanKind.SERVER) as root:
                headers = tracing.inject_headers({"x-request-source": "test"})
            assert headers["traceparent"].split("-")[1] == format(
                root.get_span_context().trace_id, "032x")
            rid = submit(db_url, "linear_workflow", {"even_number": 2}, headers=headers)
            task = (await trio.to_thread.run_sync(outcome, db_url, rid))["task_uuid"]
            assert await trio.to_thread.run_sync(wait_task, db_url, task) == "complete"
            trace_id = root.get_span_context().trace_id
            deadline = time.monotonic() + 10
            while True:
                spans = [s for s in exporter.get_finished_spans()
                         if s.context is not None and s.context.trace_id == trace_id]
                names = [s.name for s in spans]
                if names.count("worker.execute_step") >= 4 or time.monotonic() > deadline:
                    break
                await trio.sleep(0.02)
    finally:
        tracing.shutdown_tracing()
    assert names.count("gateway.create_task") == 1
    assert names.count("ingestion.task_request") == 1
    assert names.count("worker.execute_step") == 4
    # Each plain success is applied by the statement that records it, the last one
    # completing the task: no result-processing or finalization hop (issue 18 item 3).
    assert names.count("results.step_result") == 0
    assert names.count("finalizer.finalize") == 0
    by_id = _by_id(spans)
    allowed_parents = {
        "ingestion.task_request": {"gateway.create_task"},
        "worker.execute_step": {"ingestion.task_request", "worker.execute_step"},
    }
    for s in spans:
        if s.name == "gateway.create_task":
            assert s.parent is None
            continue
        assert s.parent is not None and s.parent.span_id in by_id, s.name  # no dangling link
        assert by_id[s.parent.span_id].name in allowed_parents[s.name], s.name
    # Walking up from the last step reaches the root through every step and service, in
    # order.
    parents = {s.parent.span_id for s in spans if s.parent is not None}
    [final] = [s for s in spans if s.name == "worker.execute_step"
               and s.context is not None and s.context.span_id not in parents]
    chain = [final.name]
    node = final
    while node.parent is not None:
        node = by_id[node.parent.span_id]
        chain.append(node.name)
    assert chain == ["worker.execute_step"] * 4 + [
        "ingestion.task_request", "gateway.create_task"]
    steps = [s.attributes["tasker.step_name"] for s in spans
             if s.name == "worker.execute_step" and s.attributes]
    assert sorted(steps) == [f"linear_step_{i}" for i in range(1, 5)]
    assert all(s.kind is SpanKind.CONSUMER for s in spans if s.name != "gateway.create_task")
