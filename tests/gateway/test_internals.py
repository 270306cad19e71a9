"""Gateway internals: outcome routing, the NOTIFY fan-out and the task watch, conversions,
input parsing, redaction, the OpenAPI builder and the reflection descriptors."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import pydantic
import pytest
import trio
import trio.testing

from tasker_gateway.grpc import inputs as grpc_inputs
from tasker_gateway.grpc import reflection
from tasker_gateway.grpc.bridge import _Headers
from tasker_gateway.grpc.convert import enum_member, from_struct, to_pb
from tasker_gateway.models.tasks import TaskRequestBody
from tasker_gateway.openapi import _strip_null
from tasker_gateway.outcomes import IngestionOutcome, OutcomeWaiter, parse_outcome
from tasker_gateway.streams import StateEvent, StatusHub, parse_events
from tasker_gateway.usecases.inputs import describe, parse_uuid, reject_nul
from tasker_gateway.usecases.steps import StepAction
from tasker_gateway.usecases.system import redact
from tasker_gateway.usecases.tasks import TaskListQuery
from tasker_gateway.usecases.watch import open_watch
from tasker_shared.contracts.generated.google.protobuf import Struct
from tasker_shared.contracts.generated.tasker import v1 as pb
from tasker_shared.db.listen import Notification
from tasker_shared.errors import ConflictError, NotFoundError, Unavailable, ValidationError
from tests.gateway.conftest import Gateway, running_gateway
from tests.gateway.helpers import create_rest, step_uuids


def note(channel: str, payload: Any) -> Notification:
    return Notification(channel=channel, payload=payload if isinstance(payload, str)
                        else json.dumps(payload))


async def test_outcome_waiter_routes_and_ignores() -> None:
    waiter = OutcomeWaiter()
    with waiter.expect("r1") as slot:
        with pytest.raises(ConflictError, match="already being created"), waiter.expect("r1"):
            pass
        waiter.on_notification(note("c", {"request_id": "other", "outcome": "created"}))
        waiter.on_notification(note("c", "{broken"))
        waiter.on_notification(note("c", {"request_id": "r1", "outcome": "invalid",
                                          "reason": "nope", "error_code": "not_found"}))
        assert slot.event.is_set() and slot.outcome is not None
        assert slot.outcome.error_code == "not_found"
    assert waiter.statistics() == {"waiting": 0, "received": 3, "matched": 1, "malformed": 1}
    assert parse_outcome(json.dumps({"request_id": 1, "outcome": "created",
                                     "task_uuid": "bad"})) is None


class _Table:
    """The task_request_outcomes table as `gather` reads it, with the reads it was asked."""

    def __init__(self) -> None:
        self.rows: dict[str, IngestionOutcome] = {}
        self.reads: list[list[str]] = []

    async def read(self, rids: list[str]) -> dict[str, IngestionOutcome]:
        self.reads.append(rids)
        await trio.sleep(0.001)  # a round trip: notifications may arrive meanwhile
        return {rid: self.rows[rid] for rid in rids if rid in self.rows}


def _created(rid: str) -> IngestionOutcome:
    return IngestionOutcome(request_id=rid, outcome="created", task_uuid=UUID(int=7),
                            reason=None)


async def test_gather_hears_outcomes_without_reading_the_table(
        autojump_clock: trio.testing.MockClock) -> None:
    waiter, table = OutcomeWaiter(), _Table()
    with waiter.expect("a") as a, waiter.expect("b") as b:
        async with trio.open_nursery() as nursery:
            async def notify() -> None:
                await trio.sleep(0.2)
                for rid in ("b", "a"):
                    waiter.on_notification(note("c", {"request_id": rid, "outcome": "created"}))
            nursery.start_soon(notify)
            found = await waiter.gather({"a": a, "b": b}, trio.current_time() + 5,
                                        listening=lambda: True, read=table.read)
    assert set(found) == {"a", "b"} and table.reads == []
    assert trio.current_time() == pytest.approx(0.2)


async def test_gather_reads_the_table_when_the_listener_reconnects(
        autojump_clock: trio.testing.MockClock) -> None:
    """An outcome sent while the listener was away is never heard: the reconnect makes the
    waiting request read the table at once, not at its deadline (issue 12: a create waited
    its whole 5 s after a database blip)."""
    waiter, table = OutcomeWaiter(), _Table()
    with waiter.expect("a") as a:
        async with trio.open_nursery() as nursery:
            async def blip() -> None:
                await trio.sleep(1.0)
                table.rows["a"] = _created("a")  # committed, its NOTIFY lost
                await trio.sleep(1.0)
                waiter.resync()  # the listener is back
            nursery.start_soon(blip)
            found = await waiter.gather({"a": a}, trio.current_time() + 5,
                                        listening=lambda: True, read=table.read)
    assert found == {"a": _created("a")} and table.reads == [["a"]]
    assert trio.current_time() < 2.1


async def test_gather_waits_again_after_a_reconnect_that_found_nothing(
        autojump_clock: trio.testing.MockClock) -> None:
    waiter, table = OutcomeWaiter(), _Table()
    with waiter.expect("a") as a:
        async with trio.open_nursery() as nursery:
            async def later() -> None:
                await trio.sleep(0.5)
                waiter.resync()  # nothing recorded yet: the table has no row
                await trio.sleep(0.5)
                waiter.on_notification(note("c", {"request_id": "a", "outcome": "created"}))
            nursery.start_soon(later)
            found = await waiter.gather({"a": a}, trio.current_time() + 5,
                                        listening=lambda: True, read=table.read)
    assert set(found) == {"a"} and table.reads == [["a"]]
    assert trio.current_time() == pytest.approx(1.0, abs=0.01)


async def test_gather_polls_the_table_without_a_listener_and_stops_at_the_deadline(
        autojump_clock: trio.testing.MockClock) -> None:
    waiter, table = OutcomeWaiter(), _Table()
    with waiter.expect("a") as a, waiter.expect("b") as b:
        table.rows["a"] = _created("a")
        found = await waiter.gather({"a": a, "b": b}, trio.current_time() + 2,
                                    listening=lambda: False, read=table.read)
    assert set(found) == {"a"}  # b never recorded: left out at the deadline
    assert 2.0 <= trio.current_time() < 2.3
    assert 3 < len(table.reads) < 20 and table.reads[-1] == ["b"]


async def test_hub_resync_tells_every_watcher_to_read_its_task_again() -> None:
    """After the listener reconnected, a watcher may have missed its task's last event (the
    completion): it gets a None at once and reads the task again, instead of waiting for its
    quiet-period resync."""
    hub = StatusHub(capacity=1)
    first, second = hub.subscribe(UUID(int=1)), hub.subscribe(UUID(int=2))
    hub.on_task_event(note("tasker_task_events", {
        "task_uuid": str(UUID(int=2)), "from_state": "pending", "to_state": "initializing",
        "event": "start"}))
    hub.resync()
    assert first.receive.receive_nowait() is None and not first.overflowed
    assert second.overflowed  # its channel was full: the watcher resyncs on the next read
    hub.unsubscribe(first)
    hub.unsubscribe(second)


async def test_hub_fan_out() -> None:
    hub = StatusHub(capacity=1)
    task = UUID(int=1)
    sub = hub.subscribe(task)
    payload = {"task_uuid": str(task), "from_state": "pending", "to_state": "initializing",
               "event": "start"}
    hub.on_task_event(note("tasker_task_events", payload))
    hub.on_task_event(note("tasker_task_events", payload))
    assert sub.overflowed and hub.statistics()["delivered"] == 2
    hub.on_step_event(note("tasker_step_events", {"task_uuid": str(task)}))
    assert hub.malformed == 1
    hub.unsubscribe(sub)
    hub.unsubscribe(sub)
    assert hub.active == 0
    hub.on_step_event(note("tasker_step_events", {"task_uuid": str(task)}))
    assert hub.malformed == 1  # with nobody watching, announcements are not even read
    assert parse_events("[]", step=False) is None


def test_one_notification_announces_every_transition_of_its_write() -> None:
    """A write's notification names the states it passed through and the event of each
    transition; the old one-transition form is still read; inconsistent ones are refused."""
    task, step = UUID(int=3), UUID(int=4)
    payload = {"task_uuid": str(task), "step_uuid": str(step),
               "states": ["in_progress", "enqueued_for_orchestration", "complete"],
               "events": ["enqueue_for_orchestration", "complete"]}
    assert parse_events(json.dumps(payload), step=True) == [
        StateEvent(task_uuid=task, step_uuid=step, from_state="in_progress",
                   to_state="enqueued_for_orchestration", event="enqueue_for_orchestration"),
        StateEvent(task_uuid=task, step_uuid=step, from_state="enqueued_for_orchestration",
                   to_state="complete", event="complete")]
    first = {"task_uuid": str(task), "states": [None, "pending"], "events": ["create"]}
    assert parse_events(json.dumps(first), step=False) == [
        StateEvent(task_uuid=task, step_uuid=None, from_state=None, to_state="pending",
                   event="create")]
    for bad in ({**payload, "events": ["complete"]}, {**payload, "states": "complete"},
                {**payload, "events": []}, {**first, "states": [None, None]}):
        assert parse_events(json.dumps(bad), step=True) is None
    hub = StatusHub(capacity=4)
    sub = hub.subscribe(task)
    hub.on_step_event(note("tasker_step_events", payload))
    assert [sub.receive.receive_nowait().to_state for _ in range(2)] == [
        "enqueued_for_orchestration", "complete"]
    hub.unsubscribe(sub)


async def test_watch_resyncs_on_gaps_and_ends(gw: Gateway) -> None:
    task = (await create_rest(gw))["task_uuid"]
    watch = await open_watch(gw.ctx, UUID(task), include_steps=True)
    first = [await watch.__anext__() for _ in range(5)]
    assert first[0].task_state == "steps_in_process" and first[1].step_state == "enqueued"
    channel = "tasker_task_events"
    stale = {"task_uuid": task, "from_state": "pending", "to_state": "initializing",
             "event": "start"}
    repeat = {"task_uuid": task, "from_state": "enqueuing_steps",
              "to_state": "steps_in_process", "event": "steps_enqueued"}
    unknown_step = {"task_uuid": task, "step_uuid": str(UUID(int=7)), "from_state": "pending",
                    "to_state": "enqueued", "event": "enqueue"}
    gw.ctx.hub.on_task_event(note(channel, stale))
    gw.ctx.hub.on_task_event(note(channel, repeat))
    gw.ctx.hub.on_step_event(note("tasker_step_events", unknown_step))
    with trio.fail_after(5):
        while watch.resyncs < 3:
            await watch._wait()
    assert not watch._pending
    gw.sql("SELECT tasker.cancel_task_v1(%s, NULL, '{}')", (task,))
    rest = [update async for update in watch]
    assert rest[-1].update_type == "task_error" and rest[-1].task_state == "cancelled"
    assert {u.step_state for u in rest if u.step_state} == {"cancelled"}
    with pytest.raises(NotFoundError):
        await open_watch(gw.ctx, UUID(int=9), include_steps=False)
    assert gw.ctx.hub.active == 0


async def test_watch_without_listener_and_stream_limit(db_url: str) -> None:
    async with running_gateway(db_url, queues={"deployment_mode": "polling",
                                               "poll_interval_ms": 20},
                               gateway={"max_streams": 1}) as gw:
        task = (await create_rest(gw))["task_uuid"]
        watch = await open_watch(gw.ctx, UUID(task), include_steps=False)
        assert watch.resync_seconds == pytest.approx(0.02)
        with pytest.raises(Unavailable):
            await open_watch(gw.ctx, UUID(task), include_steps=False)
        steps = step_uuids(gw, task)
        for name in sorted(steps):
            gw.sql("SELECT tasker.resolve_step_v1(%s, %s, 'resolve_manually', NULL, '{}')",
                   (task, steps[name]))
        with trio.fail_after(10):
            updates = [u async for u in watch]
        assert updates[-1].update_type == "task_complete"
        assert updates[-1].task_state == "complete"
        assert watch.resyncs >= 2  # no listener: changes were found by re-reading


def test_conversions() -> None:
    assert enum_member(pb.TaskState, "complete") is pb.TaskState.COMPLETE
    assert enum_member(pb.TaskState, "no-such") is pb.TaskState.UNSPECIFIED
    assert from_struct(None) is None
    assert from_struct(Struct.from_dict({"a": 2.0, "b": [1.5, {"c": 3.0}]})) == {
        "a": 2, "b": [1.5, {"c": 3}]}
    message = to_pb({"queue_name": "q", "depth": 3.6, "tier": "critical",
                     "oldest_message_age_seconds": 1.0}, pb.QueueDepth)
    assert message.depth == 4 and message.tier is pb.QueueDepthTier.CRITICAL
    struct = to_pb({"config": {"when": datetime(2024, 1, 1, tzinfo=UTC), "id": UUID(int=1)},
                    "redacted_fields": [], "environment": "test"}, pb.GetConfigResponse)
    assert struct.config.to_dict()["id"] == str(UUID(int=1))
    assert _Headers({"authorization": "x", "bin-bin": b"1"}).get("bin-bin") is None


def test_grpc_inputs() -> None:
    start, end = datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 2, 1, tzinfo=UTC)
    query = grpc_inputs.list_query(pb.ListTasksRequest(
        status=pb.TaskState.ERROR, name="n", created_at=pb.TimestampRange(start=start, end=end),
        pagination=pb.PaginationRequest(page=2, per_page=5)))
    assert query == TaskListQuery(page=2, per_page=5, status="error", name="n",
                                  created_from=start, created_to=end)
    action = grpc_inputs.step_action(pb.ResolveStepRequest(
        action=pb.ResolutionStrategy.COMPLETE_MANUALLY), "caller")
    assert action.result == {} and action.actor == "caller"
    update = grpc_inputs.dlq_update(pb.UpdateInvestigationRequest(
        resolution_status=pb.DlqResolutionStatus.CANCELLED, resolved_by="me"))
    assert update.resolution_status == "cancelled" and update.resolved_by == "me"
    with pytest.raises(ValidationError, match="NUL"):
        grpc_inputs.task_request(pb.TaskRequest(name="x", context=Struct.from_dict(
            {"k": "a\x00"})))
    body = grpc_inputs.task_request(pb.TaskRequest(
        name="x", options=Struct.from_dict({"o": 1}), priority=3,
        requested_at=start, correlation_id=str(UUID(int=5))))
    assert body.options == {"o": 1} and body.priority == 3
    assert body.correlation_id == UUID(int=5)


def test_inputs_and_actions() -> None:
    assert parse_uuid(str(UUID(int=3)), "id") == UUID(int=3)
    with pytest.raises(ValidationError, match="'x' is not a valid UUID"):
        parse_uuid("x", "id")
    with pytest.raises(ValidationError, match=r"body\.a\[1\]"):
        reject_nul({"a": ["ok", "no\x00"]}, "body")
    with pytest.raises(ValidationError, match="keys"):
        reject_nul({"k\x00": 1}, "body")
    with pytest.raises(pydantic.ValidationError) as info:
        TaskRequestBody.model_validate({"name": "", "namespace": "-", "version": "", "tags": 1,
                                        "priority": 500, "extra": 1})
    described = describe(info.value, where="body")
    assert "and 1 more" in described.message and len(described.details["problems"]) == 6
    for bad in ({"action": "fly"}, {"reason": " "}, {"actor": ""},
                {"action": "complete_manually"}):
        fields = {"action": "resolve_manually", "reason": "r", "actor": "a", **bad}
        with pytest.raises(ValidationError):
            StepAction(**fields)
    with pytest.raises(ValidationError):
        TaskListQuery(page=0)


def test_redaction_and_openapi_helpers() -> None:
    found: list[str] = []
    data = redact({"database": {"url": "postgres://u:p@h/db"}, "keys": [{"key": "k"}],
                   "auth": {"token": "", "jwt_public_key": None}}, "", found)
    assert data["database"]["url"] == "***REDACTED***" and data["keys"][0]["key"] != "k"
    assert found == ["database.url", "keys[0].key"]
    assert _strip_null({"anyOf": [{"type": "integer"}, {"type": "null"}], "default": None}) == {
        "type": "integer"}
    assert _strip_null({"anyOf": [{"type": "integer"}, {"type": "string"}]})["anyOf"]


def test_reflection_descriptors_are_current(tmp_path: Any) -> None:
    assert reflection.main(["--check"]) == 0
    pool = reflection.descriptor_pool()
    assert pool.FindFileContainingSymbol("tasker.v1.DlqService").name == "tasker/v1/dlq.proto"
