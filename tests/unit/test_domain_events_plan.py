"""Domain event planning and routing without a database: tasker-core's publication
conditions, schema checks, custom publishers that misbehave, subscriber patterns, the
counters of stale and unrecorded results, and the /metrics/events route."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
import trio

from tasker_shared.domain.template.enums import DeliveryMode, EventCondition
from tasker_shared.domain.template.model import EventDeclaration
from tasker_shared.runtime.health import HealthApp
from tasker_worker.events.model import uuid7
from tasker_worker.events.plan import condition_met, payload_errors, plan_events, will_retry
from tasker_worker.events.router import DomainEventRouter
from tasker_worker.runtime.claims import ClaimedStep, StepOutcome
from tasker_worker.sdk.events import (
    DomainEvent,
    EventPublisher,
    PublisherRegistry,
    StepEventContext,
    SubscriberRegistry,
)


def _outcome(*, success: bool = True, retryable: bool = False, attempt: int = 1,
             max_attempts: int = 3, result: dict[str, Any] | None = None,
             declared: tuple[EventDeclaration, ...] = ()) -> StepOutcome:
    step = ClaimedStep(
        queue="worker_ns_queue", msg_id=1, task_uuid=uuid.uuid4(), step_uuid=uuid.uuid4(),
        correlation_id=uuid.uuid4(), step_name="s", attempt=attempt, max_attempts=max_attempts,
        inputs={}, checkpoint=None, task_context={"k": 1}, namespace="ns", task_name="t",
        task_version="1.0.0", named_task_uuid=uuid.uuid4(), dependency_results={}, headers=None)
    payload = {"success": success, "result": result or {},
               "metadata": {"retryable": retryable}}
    return StepOutcome(step=step, success=success, payload=payload, handler="h",
                       error=None if success else "boom", declared=declared)


@pytest.mark.parametrize(("condition", "success", "retry", "published"), [
    (EventCondition.SUCCESS, True, False, True),
    (EventCondition.SUCCESS, False, True, False),
    (EventCondition.FAILURE, False, True, True),
    (EventCondition.FAILURE, False, False, True),
    (EventCondition.FAILURE, True, False, False),
    (EventCondition.RETRYABLE_FAILURE, False, True, True),
    (EventCondition.RETRYABLE_FAILURE, False, False, False),
    (EventCondition.PERMANENT_FAILURE, False, False, True),
    (EventCondition.PERMANENT_FAILURE, False, True, False),
    (EventCondition.PERMANENT_FAILURE, True, False, False),
    (EventCondition.ALWAYS, True, False, True),
    (EventCondition.ALWAYS, False, True, True),
])
def test_conditions(condition: EventCondition, success: bool, retry: bool,
                    published: bool) -> None:
    assert condition_met(condition, success=success, retry=retry) is published


def test_a_failure_is_retried_only_when_retryable_with_an_attempt_left() -> None:
    assert will_retry(_outcome(success=False, retryable=True, attempt=1, max_attempts=2))
    assert not will_retry(_outcome(success=False, retryable=True, attempt=2, max_attempts=2))
    assert not will_retry(_outcome(success=False, retryable=False, attempt=1))
    assert not will_retry(_outcome(success=False, retryable=True, attempt=1, max_attempts=0))


def test_payload_errors_name_the_path_and_report_unusable_schemas() -> None:
    schema = {"type": "object", "required": ["id"], "properties": {"n": {"type": "integer"}}}
    assert payload_errors(schema, {"id": "x", "n": 1}) == []
    assert payload_errors(None, "anything") == []
    assert payload_errors(schema, {"n": "one"}) == [
        "$: 'id' is a required property", "$.n: 'one' is not of type 'integer'"]
    [bad] = payload_errors({"type": 12}, {})
    assert bad.startswith("the declared schema is not a valid JSON Schema")
    [remote] = payload_errors({"$ref": "https://example.com/s.json"}, {})
    assert remote.startswith("the declared schema cannot be applied")


class Raising(EventPublisher):
    name = "raising"

    def transform_payload(self, ctx: StepEventContext) -> Any:
        raise RuntimeError("no payload today")


class NotJson(EventPublisher):
    name = "not_json"

    def transform_payload(self, ctx: StepEventContext) -> Any:
        return {"when": object(), "nan": float("nan")}


class Declines(EventPublisher):
    name = "declines"

    def should_publish(self, ctx: StepEventContext) -> bool:
        return False


def test_misbehaving_publishers_cost_their_event_only() -> None:
    publishers = PublisherRegistry()
    for p in (Raising(), NotJson(), Declines()):
        publishers.register(p)
    declared = tuple(EventDeclaration(name=f"e.{n}", publisher=n, condition=EventCondition.ALWAYS)
                     for n in ("raising", "not_json", "declines", "unknown_one"))
    plan = plan_events(_outcome(result={"a": 1}, declared=declared), publishers=publishers,
                       max_bytes=1000)
    assert [e.event.event_name for e in plan.events] == ["e.unknown_one"]  # default publisher
    assert plan.events[0].event.payload == {"a": 1}
    assert plan.skipped == 1
    assert [r.split(":")[0] for r in plan.rejected] == ["e.raising", "e.not_json"]
    assert "RuntimeError: no payload today" in plan.rejected[0]
    assert "not representable as JSON" in plan.rejected[1]


def test_payloads_past_the_bound_are_rejected() -> None:
    declared = (EventDeclaration(name="big.one"),)
    plan = plan_events(_outcome(result={"blob": "x" * 500}, declared=declared),
                       publishers=PublisherRegistry(), max_bytes=100)
    assert plan.events == () and "at most 100 are allowed" in plan.rejected[0]


def test_a_planner_failure_never_reaches_the_dispatcher(
        monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("planner bug")

    monkeypatch.setattr("tasker_worker.events.router.plan_events", broken)
    router = DomainEventRouter(worker_id="w", publishers=PublisherRegistry(),
                               subscribers=SubscriberRegistry())
    outcome = _outcome(declared=(EventDeclaration(name="a.b"), EventDeclaration(name="a.c")))
    assert router.plan(outcome) is outcome  # the result is recorded as it is
    assert router.tasker.rejected == 2


def test_subscriber_patterns() -> None:
    subs = SubscriberRegistry()
    seen: list[str] = []

    @subs.subscribe("order.*", "*.failed")
    def handler(event: DomainEvent) -> None:
        seen.append(event.event_name)

    assert subs.matching("order.validated") == [handler]
    assert subs.matching("payment.failed") == [handler]
    assert subs.matching("payment.processed") == []
    assert subs.matching("Order.validated") == []  # case-sensitive
    with pytest.raises(ValueError, match="non-empty patterns"):
        subs.add([], handler)
    subs.remove(handler)
    assert subs.count == 0


def _routed(router: DomainEventRouter, mode: DeliveryMode) -> StepOutcome:
    outcome = _outcome(declared=(EventDeclaration(name="x.y", delivery_mode=mode),))
    return router.plan(outcome)


async def test_counters_of_recorded_stale_and_unrecorded_results() -> None:
    subs = SubscriberRegistry()
    got: list[DomainEvent] = []
    subs.add(["*"], got.append)
    router = DomainEventRouter(worker_id="w-1", subscribers=subs,
                               publishers=PublisherRegistry())
    async with trio.open_nursery() as nursery:
        nursery.start_soon(router.run)
        router.after_record(_routed(router, DeliveryMode.DURABLE), "recorded")
        router.after_record(_routed(router, DeliveryMode.FAST), "recorded")
        router.after_record(_routed(router, DeliveryMode.BROADCAST), "recorded")
        router.after_record(_routed(router, DeliveryMode.BROADCAST), "stale")
        router.after_record(_routed(router, DeliveryMode.FAST), "failed")
        with trio.fail_after(5):
            while len(got) < 2:  # noqa: ASYNC110 - delivered by a worker thread
                await trio.sleep(0.01)
        nursery.cancel_scope.cancel()
    stats = router.stats()
    assert stats["router"] == {"total_routed": 4, "durable_routed": 1, "fast_routed": 1,
                               "broadcast_routed": 1, "fast_delivery_errors": 0,
                               "routing_errors": 1}
    bus = stats["in_process_bus"]
    assert (bus["total_events_dispatched"], bus["ffi_channel_dispatches"],
            bus["ffi_channel_drops"], bus["ffi_subscriber_count"]) == (2, 2, 0, 1)
    assert stats["tasker"]["dropped_stale"] == 1 and stats["worker_id"] == "w-1"


async def test_metrics_events_route_answers_json() -> None:
    router = DomainEventRouter(worker_id="w-2", subscribers=SubscriberRegistry(),
                               publishers=PublisherRegistry())

    async def ready() -> tuple[bool, dict[str, Any]]:
        return True, {}

    app = HealthApp(service="worker", ready=ready, details=dict,
                    routes={"/metrics/events": router.stats})
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app({"type": "http", "path": "/metrics/events"}, receive, send)
    assert sent[0]["status"] == 200
    body = json.loads(sent[1]["body"])
    assert set(body) == {"router", "in_process_bus", "captured_at", "worker_id", "tasker"}
    assert body["worker_id"] == "w-2" and body["router"]["total_routed"] == 0


def test_uuid7_is_time_ordered() -> None:
    ids = [uuid7() for _ in range(50)]
    assert all(u.version == 7 for u in ids)
    assert [u.int >> 80 for u in ids] == sorted(u.int >> 80 for u in ids)
