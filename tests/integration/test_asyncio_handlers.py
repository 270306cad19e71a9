"""asyncio handlers in a running pipeline: real HTTP I/O with httpx, 100 steps at once, and
cancellation (task cancelled, handler timeout) reaching asyncio, Trio and sync handlers."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import psycopg
import pytest
import trio
from psycopg.types.json import Jsonb

from tasker_finalizer.service import serve as serve_finalizer
from tasker_ingestion.service import serve as serve_ingestion
from tasker_results.service import serve as serve_results
from tasker_worker.service import serve as serve_worker
from tests.integration.aio_handlers import PROBES
from tests.support import outcome, service_settings, steps_of, wait_task

TEMPLATES = Path(__file__).resolve().parent / "aio_templates"
CONCURRENT = 100
KINDS = ("asyncio", "trio", "sync")
WAIT = 60.0  # seconds: a bound for things that take milliseconds, not a measurement


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256
    barrier: threading.Barrier


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path == "/barrier":
            # Answers only once CONCURRENT requests wait here: proof they run at once.
            try:
                body: object = {"arrived": self.server.barrier.wait()}
            except threading.BrokenBarrierError:
                self.send_error(503, "fewer than all handlers arrived")
                return
        else:
            body = {key: values[0] for key, values in parse_qs(url.query).items()}
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def http_server() -> Iterator[str]:
    server = _Server(("127.0.0.1", 0), _Handler)
    server.barrier = threading.Barrier(CONCURRENT, timeout=WAIT)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
async def aio_pipeline(db_url: str) -> AsyncIterator[str]:
    settings = service_settings(db_url, worker={
        "namespaces": ["aio"], "handler_modules": ["tests.integration.aio_handlers"],
        "template_paths": [str(TEMPLATES)], "max_concurrent_handlers": CONCURRENT})
    async with trio.open_nursery() as nursery:
        for serve in (serve_ingestion, serve_results, serve_finalizer, serve_worker):
            await nursery.start(serve, settings)
        yield db_url
        nursery.cancel_scope.cancel()


async def _created(url: str, name: str, *contexts: dict[str, object]) -> list[str]:
    """Send the task requests (one connection, the way the gateway sends them) and wait
    for each to be created; the task uuids in order."""
    requests = [str(uuid.uuid4()) for _ in contexts]
    with psycopg.connect(url, autocommit=True) as conn:
        for rid, context in zip(requests, contexts, strict=True):
            message = {"request_id": rid, "task_request": {
                "name": name, "namespace": "aio", "version": "1.0.0", "context": context}}
            conn.execute("SELECT tasker.send_v1('orchestration_task_requests', %s, NULL)",
                         (Jsonb(message),))
    tasks = []
    for rid in requests:
        out = await trio.to_thread.run_sync(outcome, url, rid)
        assert out["outcome"] == "created", out
        tasks.append(str(out["task_uuid"]))
    return tasks


async def test_a_hundred_asyncio_handlers_do_real_io_at_once(aio_pipeline: str,
                                                             http_server: str) -> None:
    tasks = await _created(aio_pipeline, "fetch",
                           *({"url": http_server, "i": i} for i in range(CONCURRENT)))
    for task in tasks:
        state = await trio.to_thread.run_sync(
            lambda t=task: wait_task(aio_pipeline, t, timeout=WAIT * 2))
        assert state == "complete", steps_of(aio_pipeline, task)
    arrived = set()
    for i, task in enumerate(tasks):
        result = steps_of(aio_pipeline, task)["fetch"]["results"]["result"]
        assert result["echo"] == {"i": str(i)}
        assert result["inner_timeout"] is True
        assert result["library"] == "asyncio"
        assert result["loop"] == "asyncio.unix_events"
        arrived.add(result["barrier"]["arrived"])
    assert arrived == set(range(CONCURRENT))


async def _wait(event: threading.Event) -> bool:
    return await trio.to_thread.run_sync(event.wait, WAIT)


async def test_cancellation_and_timeouts_reach_every_kind_of_handler(aio_pipeline: str) -> None:
    cancelled, = await _created(aio_pipeline, "cancel_probe", {})
    timed_out, = await _created(aio_pipeline, "timeout_probe", {})
    for kind in KINDS:
        assert await _wait(PROBES[(cancelled, kind)].started), kind
    with psycopg.connect(aio_pipeline, autocommit=True) as conn:
        conn.execute("SELECT tasker.cancel_task_v1(%s, %s, %s)",
                     (cancelled, uuid.uuid4(), Jsonb({"reason": "test"})))
    for kind in KINDS:
        assert await _wait(PROBES[(cancelled, kind)].stopped), kind
    lost = "the step is no longer in progress under attempt 1 (it is cancelled)"
    assert PROBES[(cancelled, "asyncio")].seen == ["CancelledError; ctx.cancelled=True"]
    assert PROBES[(cancelled, "trio")].seen == ["Cancelled; ctx.cancelled=True"]
    assert PROBES[(cancelled, "sync")].seen == [f"callback: {lost}", f"flag: {lost}"]

    state = await trio.to_thread.run_sync(lambda: wait_task(aio_pipeline, timed_out,
                                                            timeout=WAIT))
    assert state in ("error", "blocked_by_failures")
    for kind in KINDS:
        assert await _wait(PROBES[(timed_out, kind)].stopped), kind
    assert PROBES[(timed_out, "asyncio")].seen == ["CancelledError; ctx.cancelled=True"]
    assert PROBES[(timed_out, "trio")].seen == ["Cancelled; ctx.cancelled=True"]
    assert PROBES[(timed_out, "sync")].seen == ["callback: timed out after 1s",
                                                "flag: timed out after 1s"]
    for name, step in steps_of(aio_pipeline, timed_out).items():
        error = step["results"]["error"]
        assert error["error_type"] == "handler_timeout", (name, error)

    # The cancelled runs' results were discarded: the steps stay cancelled, with none.
    steps = steps_of(aio_pipeline, cancelled)
    assert {s["current_state"] for s in steps.values()} == {"cancelled"}
    assert all(s["results"] is None for s in steps.values()), steps
