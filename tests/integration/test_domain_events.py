"""Domain events (a step's `publishes_events`) through the real worker and database:
durable events land in `{namespace}_domain_events` committed with the step's result (never
for a stale or rolled-back record), fast ones reach the worker's in-process subscribers,
conditions split failures by retry, a payload that breaks its schema is not published (the
step is unaffected), and the worker's /metrics/events counters add up."""

from __future__ import annotations

import dataclasses
import functools
import uuid
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID

import psycopg
import pytest
import trio
from psycopg.rows import dict_row

from tasker_finalizer.service import serve as serve_finalizer
from tasker_ingestion.service import serve as serve_ingestion
from tasker_results.service import serve as serve_results
from tasker_shared.domain.template.enums import DeliveryMode
from tasker_shared.runtime.service import Runtime
from tasker_worker.events.model import RoutedEvent
from tasker_worker.runtime.claims import StepOutcome, claim_steps, record_results
from tasker_worker.sdk.events import DomainEvent
from tasker_worker.service import serve as serve_worker
from tests.e2e.cluster_support import TEMPLATES
from tests.e2e.domain_event_handlers import RECEIVED
from tests.integration.dag_support import make_task, named_task
from tests.support import outcome, service_settings, steps_of, submit, wait_task

Conn = psycopg.Connection[dict[str, Any]]
CORE_NS = "domain_events_py"
CORE_TEMPLATE = "domain_event_publishing_py"


@pytest.fixture
async def worker(db_url: str) -> AsyncIterator[tuple[str, Runtime]]:
    """Orchestration and a worker over tests/e2e/templates/domain_events; yields the
    database URL and the worker's runtime."""
    settings = service_settings(db_url, worker={
        "namespaces": [CORE_NS, "devents"],
        "handler_modules": ["tests.e2e.domain_event_handlers"],
        "template_paths": [str(TEMPLATES / "domain_events")]})
    runtimes: list[Runtime] = []
    async with trio.open_nursery() as nursery:
        for serve in (serve_ingestion, serve_results, serve_finalizer):
            await nursery.start(serve, settings)
        await nursery.start(functools.partial(serve_worker, settings,
                                              on_runtime=runtimes.append))
        yield db_url, runtimes[0]
        nursery.cancel_scope.cancel()


def queued_events(url: str, namespace: str) -> list[dict[str, Any]]:
    with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
        exists = conn.execute("SELECT 1 FROM pgmq.meta WHERE queue_name = %s",
                              (f"{namespace}_domain_events",)).fetchone()
        if exists is None:
            return []
        rows = conn.execute(f"SELECT message FROM pgmq.q_{namespace}_domain_events"
                            " ORDER BY msg_id").fetchall()
    return [r["message"] for r in rows]


async def run_task(url: str, name: str, namespace: str, context: dict[str, Any]) -> str:
    rid = submit(url, name, context, namespace=namespace)
    task = (await trio.to_thread.run_sync(outcome, url, rid))["task_uuid"]
    await trio.to_thread.run_sync(lambda: wait_task(url, task, timeout=20))
    return str(task)


async def received(task: str, count: int) -> list[DomainEvent]:
    """The fast events of `task` the subscriber got, once there are `count` of them."""
    with trio.fail_after(10):
        while len(RECEIVED.of_task(task)) < count:  # noqa: ASYNC110 - set by a thread
            await trio.sleep(0.02)
    await trio.sleep(0.1)  # nothing more arrives
    return RECEIVED.of_task(task)


def stats(rt: Runtime) -> dict[str, Any]:
    return rt.routes["/metrics/events"]()


def delta(before: dict[str, Any], after: dict[str, Any], part: str) -> dict[str, int]:
    return {k: v - before[part][k] for k, v in after[part].items() if isinstance(v, int)}


async def test_tasker_core_fixture_publishes_durable_and_fast_events(
        worker: tuple[str, Runtime]) -> None:
    url, rt = worker
    before = stats(rt)
    order_id = str(uuid.uuid4())
    task = await run_task(url, CORE_TEMPLATE, CORE_NS, {
        "order_id": order_id, "customer_id": "python_customer_123", "amount": 99.99,
        "simulate_failure": False})
    steps = steps_of(url, task)
    assert {s["current_state"] for s in steps.values()} == {"complete"}

    # payment.processed (durable, success) is in the queue, committed with its step
    [event] = [e for e in queued_events(url, CORE_NS) if e["metadata"]["task_uuid"] == task]
    assert event["event_name"] == "payment.processed" and event["event_version"] == "1.0"
    UUID(event["event_id"])
    meta = event["metadata"]
    payment = steps["domain_events_py_process_payment"]
    assert meta["step_name"] == "domain_events_py_process_payment"
    assert meta["namespace"] == CORE_NS and meta["fired_by"] == "DefaultDomainEventPublisher"
    body = event["payload"]
    assert body["payload"] == payment["results"]["result"]  # the step's result, as tasker-core
    assert body["execution_result"]["success"] is True
    assert body["task_sequence_step"]["task"]["context"]["order_id"] == order_id

    # order.validated, inventory.updated (always), notification.sent: fast, in-process
    fast = await received(task, 3)
    assert sorted(e.event_name for e in fast) == [
        "inventory.updated", "notification.sent", "order.validated"]
    validated = next(e for e in fast if e.event_name == "order.validated")
    assert validated.payload["order_id"] == order_id and validated.execution_result["success"]

    after = stats(rt)
    assert delta(before, after, "router") == {
        "total_routed": 4, "durable_routed": 1, "fast_routed": 3, "broadcast_routed": 0,
        "fast_delivery_errors": 0, "routing_errors": 0}
    bus = delta(before, after, "in_process_bus")
    assert (bus["total_events_dispatched"], bus["ffi_channel_dispatches"]) == (3, 3)
    assert after["worker_id"] == rt.instance_id and after["captured_at"].endswith("Z")


async def test_failed_payment_with_a_schema_it_cannot_meet_publishes_nothing(
        worker: tuple[str, Runtime]) -> None:
    """tasker-core: payment.failed publishes the failed step's (empty) result, which its
    schema rejects; the event is skipped, the step's failure is what it would be anyway."""
    url, rt = worker
    before = stats(rt)
    task = await run_task(url, CORE_TEMPLATE, CORE_NS, {
        "order_id": str(uuid.uuid4()), "customer_id": "c", "amount": 5, "simulate_failure": True})
    payment = steps_of(url, task)["domain_events_py_process_payment"]
    assert (payment["current_state"], payment["attempts"]) == ("error", 1)  # test: 1 attempt
    assert [e for e in queued_events(url, CORE_NS) if e["metadata"]["task_uuid"] == task] == []
    assert [e.event_name for e in await received(task, 1)] == ["order.validated"]
    after = stats(rt)
    assert after["tasker"]["rejected"] - before["tasker"]["rejected"] == 1
    assert delta(before, after, "router")["durable_routed"] == 0


async def test_failure_conditions_follow_the_retry_decision(worker: tuple[str, Runtime]) -> None:
    url, rt = worker
    before = stats(rt)
    task = await run_task(url, "devents_failures", "devents", {"fail": True})
    assert steps_of(url, task)["charge"]["attempts"] == 2
    durable = [(e["event_name"], e["payload"]["execution_result"]["metadata"]["retryable"])
               for e in queued_events(url, "devents") if e["metadata"]["task_uuid"] == task]
    # attempt 1 will be retried, attempt 2 will not; charge.audited's payload lacks its
    # schema's `auditor` (rejected both times); charge.succeeded never applies
    assert durable == [("charge.retrying", True), ("charge.failed", True),
                       ("charge.gave_up", True), ("charge.failed", True),
                       ("charge.refund_requested", True)]
    [refund] = [e for e in queued_events(url, "devents")
                if e["event_name"] == "charge.refund_requested"]
    assert refund["payload"]["payload"] == {
        "error_code": "card_declined", "error_message": "card declined", "attempt": 2}
    assert refund["metadata"]["refund_policy"] == "auto"  # the publisher's extra metadata
    assert refund["metadata"]["task_uuid"] == task  # never replaced by it
    assert refund["metadata"]["fired_by"] == "devents.publishers.RefundPublisher"
    fast = sorted(e.event_name for e in await received(task, 4))
    assert fast == ["charge.attempted", "charge.attempted", "charge.failed", "charge.failed"]
    after = stats(rt)
    assert delta(before, after, "router") == {
        "total_routed": 7, "durable_routed": 3, "fast_routed": 2, "broadcast_routed": 2,
        "fast_delivery_errors": 0, "routing_errors": 0}
    assert after["tasker"]["rejected"] - before["tasker"]["rejected"] == 2

    # the same template succeeding publishes success and always events only
    task = await run_task(url, "devents_failures", "devents", {"fail": False})
    names = [e["event_name"] for e in queued_events(url, "devents")
             if e["metadata"]["task_uuid"] == task]
    assert names == ["charge.succeeded"]
    assert [e.event_name for e in await received(task, 1)] == ["charge.attempted"]


async def test_concurrent_tasks_each_publish_their_events(worker: tuple[str, Runtime]) -> None:
    url, rt = worker
    before = stats(rt)
    rids = [submit(url, CORE_TEMPLATE, {"order_id": str(uuid.uuid4()), "customer_id": f"c{i}",
                                        "amount": 100.0 + i}, namespace=CORE_NS)
            for i in range(3)]
    tasks = [str((await trio.to_thread.run_sync(outcome, url, rid))["task_uuid"]) for rid in rids]
    for task in tasks:
        assert await trio.to_thread.run_sync(lambda t=task: wait_task(url, t)) == "complete"
        assert len(await received(task, 3)) == 3
    queued = [e["metadata"]["task_uuid"] for e in queued_events(url, CORE_NS)]
    assert sorted(queued) == sorted(tasks)
    assert delta(before, stats(rt), "router")["total_routed"] == 12


# --- the record statement itself -----------------------------------------------------------

def _event(step_uuid: UUID, name: str) -> RoutedEvent:
    return RoutedEvent(DeliveryMode.DURABLE, DomainEvent(
        event_id=str(uuid.uuid4()), event_name=name, event_version="1.0", payload={"n": name},
        execution_result={}, task_sequence_step={},
        metadata={"step_uuid": str(step_uuid)}))


def test_durable_events_commit_with_the_result_and_never_for_a_stale_one(conn: Conn) -> None:
    nt = named_task(conn, name="ev_task", namespace="evrec")
    task, steps = make_task(conn, nt, {"a": []})
    conn.execute("SELECT tasker.evaluate_task_v1(%s)", (task,))
    [claimed] = claim_steps(conn, "worker_evrec_queue", None, 1, visibility_seconds=30,
                            worker_id="w", max_reads=5)
    result = {"success": True, "result": {}}

    def recorded(step: Any, name: str) -> str:
        out = StepOutcome(step=step, success=True, payload=result, handler="h", error=None,
                          events=(_event(step.step_uuid, name),))
        return record_results(conn, [out], worker_id="w")[0]

    def names() -> list[str]:
        exists = conn.execute("SELECT 1 FROM pgmq.meta WHERE queue_name = 'evrec_domain_events'"
                              ).fetchone()
        if exists is None:
            return []
        rows = conn.execute("SELECT message ->> 'event_name' AS n"
                            " FROM pgmq.q_evrec_domain_events ORDER BY msg_id").fetchall()
        return [r["n"] for r in rows]

    late = StepOutcome(step=claimed, success=True, payload=result, handler="h", error=None)
    old_attempt = dataclasses.replace(claimed, attempt=claimed.attempt + 1)
    assert recorded(old_attempt, "from.stale_run") == "stale"
    assert names() == []
    # a record rolled back takes its events with it
    with conn.transaction(force_rollback=True):
        assert recorded(claimed, "from.rolled_back") == "recorded"
        assert names() == ["from.rolled_back"]
    assert names() == []
    assert recorded(claimed, "from.recorded") == "recorded"
    assert names() == ["from.recorded"]
    assert record_results(conn, [late], worker_id="w") == ["stale"]  # recorded already
    assert names() == ["from.recorded"]
    assert steps["a"] == claimed.step_uuid
