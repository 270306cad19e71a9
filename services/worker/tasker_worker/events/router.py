"""Routes a worker's domain events: plans them when a step finishes, counts the durable ones
its result record committed, hands fast ones to the in-process subscribers, and answers
`/metrics/events` with tasker-core's DomainEventStats counters."""

from __future__ import annotations

import dataclasses
import inspect
from datetime import UTC, datetime
from typing import Any

import structlog
import trio

from tasker_shared.domain.limits import DEFAULT_MAX_BYTES
from tasker_worker.events.plan import plan_events
from tasker_worker.runtime.aio import run_on_asyncio
from tasker_worker.runtime.claims import StepOutcome
from tasker_worker.sdk.events import (
    DomainEvent,
    PublisherRegistry,
    SubscriberRegistry,
    default_publishers,
    default_subscribers,
)

log = structlog.get_logger("tasker.worker.events")

BUS_CAPACITY = 10_000  # fast events waiting for subscribers; beyond it they are dropped


@dataclasses.dataclass
class RouterCounters:
    """tasker-core's EventRouterStats, plus what Tasker adds (see `DomainEventRouter.stats`)."""

    total_routed: int = 0
    durable_routed: int = 0
    fast_routed: int = 0
    broadcast_routed: int = 0
    fast_delivery_errors: int = 0
    routing_errors: int = 0


@dataclasses.dataclass
class BusCounters:
    """tasker-core's InProcessEventBusStats: this worker's Python subscribers are what
    tasker-core calls its FFI channel's subscribers (it has no Rust handlers here)."""

    total_events_dispatched: int = 0
    ffi_channel_dispatches: int = 0
    ffi_channel_drops: int = 0


@dataclasses.dataclass
class TaskerCounters:
    skipped_by_condition: int = 0
    rejected: int = 0
    dropped_stale: int = 0
    subscriber_calls: int = 0
    subscriber_errors: int = 0


class DomainEventRouter:
    def __init__(self, *, worker_id: str, max_bytes: int | None = DEFAULT_MAX_BYTES,
                 subscribers: SubscriberRegistry | None = None,
                 publishers: PublisherRegistry | None = None) -> None:
        self.worker_id = worker_id
        self.max_bytes = max_bytes
        self.subscribers = subscribers or default_subscribers
        self.publishers = publishers or default_publishers
        self.router = RouterCounters()
        self.bus = BusCounters()
        self.tasker = TaskerCounters()
        self._send, self._recv = trio.open_memory_channel[DomainEvent](BUS_CAPACITY)

    def plan(self, outcome: StepOutcome) -> StepOutcome:
        """`outcome` with the events it publishes (unchanged when it declares none). Never
        raises: whatever goes wrong costs the events, not the step's result."""
        if not outcome.declared:
            return outcome
        try:
            found = plan_events(outcome, publishers=self.publishers, max_bytes=self.max_bytes)
        except Exception as exc:
            self.tasker.rejected += len(outcome.declared)
            log.exception("domain_events_failed", step_uuid=str(outcome.step.step_uuid),
                          error=f"{type(exc).__name__}: {exc}")
            return outcome
        self.tasker.skipped_by_condition += found.skipped
        if found.rejected:
            self.tasker.rejected += len(found.rejected)
            log.warning("domain_events_rejected", step_uuid=str(outcome.step.step_uuid),
                        step_name=outcome.step.step_name, errors=list(found.rejected))
        return dataclasses.replace(outcome, events=found.events) if found.events else outcome

    def after_record(self, outcome: StepOutcome, status: str) -> None:
        """Count what the record did with the outcome's events; deliver the fast ones of a
        recorded result. A stale result publishes nothing; an unrecorded one (the database
        did not answer) runs again and publishes then."""
        if not outcome.events:
            return
        if status == "stale":
            self.tasker.dropped_stale += len(outcome.events)
            return
        for routed in outcome.events:
            self.router.total_routed += 1
            if status != "recorded":
                self.router.routing_errors += 1
                continue
            if routed.durable and routed.fast:
                self.router.broadcast_routed += 1
            elif routed.durable:
                self.router.durable_routed += 1
            else:
                self.router.fast_routed += 1
            if routed.fast:
                self._dispatch(routed.event)

    def _dispatch(self, event: DomainEvent) -> None:
        self.bus.total_events_dispatched += 1
        if self.subscribers.count == 0:
            self.bus.ffi_channel_drops += 1
            return
        try:
            self._send.send_nowait(event)
        except (trio.WouldBlock, trio.BrokenResourceError):  # full, or the worker stopped
            self.bus.ffi_channel_drops += 1
            if self.bus.ffi_channel_drops % 1000 == 1:
                log.warning("domain_event_bus_full", dropped=self.bus.ffi_channel_drops)
            return
        self.bus.ffi_channel_dispatches += 1

    async def run(self) -> None:
        """Deliver fast events to the subscribers, one event at a time, in order."""
        async for event in self._recv:
            for handler in self.subscribers.matching(event.event_name):
                self.tasker.subscriber_calls += 1
                try:
                    await _call(handler, event)
                except Exception as exc:
                    self.tasker.subscriber_errors += 1
                    log.warning("domain_event_subscriber_failed", event_name=event.event_name,
                                event_id=event.event_id, subscriber=repr(handler),
                                error=f"{type(exc).__name__}: {exc}")

    def stats(self) -> dict[str, Any]:
        """GET /metrics/events: tasker-core's DomainEventStats (Tasker's own counters under
        `tasker`, which tasker-core's clients ignore)."""
        count = self.subscribers.count
        return {
            "router": dataclasses.asdict(self.router),
            "in_process_bus": {
                **dataclasses.asdict(self.bus), "rust_handler_dispatches": 0,
                "rust_handler_errors": 0, "rust_subscriber_patterns": 0,
                "rust_handler_count": 0, "ffi_subscriber_count": count},
            "captured_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "worker_id": self.worker_id,
            "tasker": {**dataclasses.asdict(self.tasker), "subscribers": count,
                       "subscriber_patterns": self.subscribers.pattern_count},
        }


async def _call(handler: Any, event: DomainEvent) -> None:
    """A subscriber: `async def` on the worker's asyncio loop, a sync function in a thread."""
    if _is_coroutine_function(handler):
        await run_on_asyncio(handler(event))
        return
    await trio.to_thread.run_sync(handler, event, abandon_on_cancel=True)


def _is_coroutine_function(fn: Any) -> bool:
    """An `async def` function, or an object whose `__call__` is one."""
    call = type(fn).__call__ if not inspect.isroutine(fn) else None
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(call)
