"""The workloads of shared/PEERS.md (W1-W4) and the ways a task is submitted: through the public
Python client's gRPC create (what a user's program does) or its batch create, or straight
into the ingestion queue. Each submit returns {request_id: submit time}
(epoch seconds, taken just before the call); completion times come from the database."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from bench.common import send_requests

NAMESPACE = "examples"
VERSION = "1.0.0"


@dataclass(frozen=True, kw_only=True, slots=True)
class Workload:
    key: str
    title: str
    template: str
    steps_per_task: int
    tasks: int
    at_once: bool  # all submitted together (throughput) or one after another (latency)


def fanout_template(width: int) -> str:
    """A -> `width` parallel steps -> join Z (W4), as template YAML."""
    lines = [f"name: bench_fanout_{width}", f"namespace_name: {NAMESPACE}", f'version: "{VERSION}"',
             f"description: One step, {width} parallel steps, a join (shared/PEERS.md W4)",
             "input_schema:", "  type: object", "  required: [even_number]",
             "  properties:", "    even_number: {type: integer}", "steps:",
             "  - name: fan_a", "    handler: {callable: examples.square}"]
    names = [f"fan_{i:03d}" for i in range(width)]
    for name in names:
        lines += [f"  - name: {name}", "    dependencies: [fan_a]",
                  "    handler: {callable: examples.square, initialization: {parent: fan_a}}"]
    lines += ["  - name: fan_z", f"    dependencies: [{', '.join(names)}]",
              "    handler:", "      callable: examples.add_parents",
              f"      initialization: {{parents: [{', '.join(names)}]}}"]
    return "\n".join(lines) + "\n"


def write_templates(directory: Path, fanout_width: int) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"bench_fanout_{fanout_width}.yaml").write_text(fanout_template(fanout_width))
    return directory


def workloads(*, tasks: int, sequential: int, fanouts: int, width: int) -> list[Workload]:
    return [
        Workload(key="W1", title=f"W1 {tasks} linear-4 at once", template="linear_workflow",
                 steps_per_task=4, tasks=tasks, at_once=True),
        Workload(key="W2", title=f"W2 {tasks} diamond at once", template="diamond_workflow",
                 steps_per_task=4, tasks=tasks, at_once=True),
        Workload(key="W3", title=f"W3 {sequential} linear-4 one after another",
                 template="linear_workflow", steps_per_task=4, tasks=sequential, at_once=False),
        Workload(key="W4", title=f"W4 {fanouts} x fan-out of {width}",
                 template=f"bench_fanout_{width}", steps_per_task=width + 2, tasks=fanouts,
                 at_once=True),
    ]


def contexts(n: int) -> list[dict[str, Any]]:
    run = uuid.uuid4().hex  # a fresh identity per task
    return [{"even_number": 2, "run": run, "i": i} for i in range(n)]


Submitted = dict[str, float]


class QueueSubmitter:
    """Straight into the ingestion queue: several requests in one transaction, one alone the way
    the gateway sends a request it waits on."""

    label = "queue"

    def __init__(self, url: str) -> None:
        self.conn = psycopg.connect(url, autocommit=True)

    def submit(self, template: str, ctxs: list[dict[str, Any]]) -> Submitted:
        t0 = time.time()
        ids = send_requests(self.conn, template, ctxs, namespace=NAMESPACE, version=VERSION)
        return dict.fromkeys(ids, t0)

    def close(self) -> None:
        self.conn.close()


# How the client submits several tasks: asyncio.gather over single creates, one batch create
# (create_tasks), single creates with bounded concurrency (create_tasks_concurrently), or
# single creates one after another.
STYLES = ("gather", "batch", "bounded", "sequential")
BOUNDED_CONCURRENCY = 16


class ClientSubmitter:
    """The public asyncio client (`tasker_client.AioTaskerClient`) on an event loop of its own;
    several tasks are created as `style` says (each waiting for ingestion as a create does by
    default, or not with `wait=False`)."""

    def __init__(self, address: str, *, wait: bool = True, style: str = "gather") -> None:
        from tasker_client import AioTaskerClient  # the public name

        if style not in STYLES:
            raise ValueError(f"unknown style {style!r}")
        self.loop = asyncio.new_event_loop()
        self.client = AioTaskerClient(address)
        self.wait = wait
        self.style = style
        self.label = ("client" if wait else "client, no wait") + (
            "" if style == "gather" else f", {style}")
        self.create_seconds: list[float] = []  # how long each create call took
        self.loop.run_until_complete(self.client.open())

    def _run(self, coro: Awaitable[Submitted]) -> Submitted:
        async def run() -> Submitted:
            return await coro
        return self.loop.run_until_complete(run())

    async def _one(self, template: str, ctx: dict[str, Any]) -> tuple[str, float]:
        rid = str(uuid.uuid4())
        t0 = time.time()
        await self.client.create_task(template, namespace=NAMESPACE, version=VERSION,
                                      context=ctx, wait=self.wait, request_id=rid)
        self.create_seconds.append(time.time() - t0)
        return rid, t0

    async def _many(self, template: str, ctxs: list[dict[str, Any]]) -> Submitted:
        if self.style == "sequential" or len(ctxs) == 1:
            return dict([await self._one(template, ctx) for ctx in ctxs])
        if self.style == "gather":
            return dict(await asyncio.gather(*(self._one(template, ctx) for ctx in ctxs)))
        specs = [{"name": template, "namespace": NAMESPACE, "version": VERSION, "context": ctx,
                  "request_id": str(uuid.uuid4())} for ctx in ctxs]
        t0 = time.time()
        if self.style == "batch":
            outcomes = await self.client.create_tasks(specs, wait=self.wait)
        else:
            outcomes = await self.client.create_tasks_concurrently(
                specs, wait=self.wait, concurrency=BOUNDED_CONCURRENCY)
        self.create_seconds.append(time.time() - t0)
        refused = [o for o in outcomes if o.task_uuid is None and o.reason]
        if refused:
            raise RuntimeError(f"{len(refused)} task(s) refused, e.g. {refused[0].reason}")
        return dict.fromkeys((str(spec["request_id"]) for spec in specs), t0)

    def submit(self, template: str, ctxs: list[dict[str, Any]]) -> Submitted:
        return self._run(self._many(template, ctxs))

    def close(self) -> None:
        self.loop.run_until_complete(self.client.aclose())
        self.loop.close()

