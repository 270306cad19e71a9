"""Domain events in the worker SDK: the event subscribers receive, `@subscribe` for in-process
subscribers (fast and broadcast delivery) and custom publishers named by `publisher:`.

A step's `publishes_events` declarations decide what is published; the worker publishes them
after the step's result is recorded (durable events are committed with it). Subscribers run
in the worker, one event at a time in publication order: a sync function in a thread, an
`async def` on the worker's asyncio loop. A subscriber that raises is logged and counted;
it never affects the step. Patterns are shell-style: `"order.*"`, `"*.failed"`, `"*"`.
"""

from __future__ import annotations

import fnmatch
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True, kw_only=True, slots=True)
class DomainEvent:
    """One published event, as tasker-core's DomainEvent: `payload` is the business payload
    (the step's result, or what its publisher made of it), `execution_result` the step's
    full result, `metadata` its task, step, namespace, correlation id, fired_at and fired_by."""

    event_id: str
    event_name: str
    event_version: str
    payload: Any
    execution_result: dict[str, Any]
    task_sequence_step: dict[str, Any]
    metadata: dict[str, Any]

    def to_message(self) -> dict[str, Any]:
        """The JSON sent to `{namespace}_domain_events` (tasker-core's DomainEvent)."""
        return {
            "event_id": self.event_id,
            "event_name": self.event_name,
            "event_version": self.event_version,
            "payload": {"task_sequence_step": self.task_sequence_step,
                        "execution_result": self.execution_result, "payload": self.payload},
            "metadata": self.metadata,
        }


@dataclass(frozen=True, kw_only=True, slots=True)
class StepEventContext:
    """What a custom publisher is told about the step whose event it publishes."""

    event_name: str
    task_uuid: str
    step_uuid: str
    step_name: str
    namespace: str
    correlation_id: str
    success: bool
    attempt: int
    max_attempts: int
    result: dict[str, Any] = field(default_factory=dict)
    execution_result: dict[str, Any] = field(default_factory=dict)


class EventPublisher:
    """A custom publisher: subclass it, set `name` to the `publisher:` of the declarations it
    serves and register an instance (`register_publisher`). The declaration's condition is
    evaluated first; the returned payload is then checked against the declared schema.
    Its methods run on the worker's event loop thread: they must be quick and not block."""

    name: str = ""

    def should_publish(self, ctx: StepEventContext) -> bool:
        """False skips the event (default: publish)."""
        return True

    def transform_payload(self, ctx: StepEventContext) -> Any:
        """The business payload of the event (default: the step's result)."""
        return ctx.result

    def additional_metadata(self, ctx: StepEventContext) -> dict[str, Any]:
        """Extra fields for the event's metadata (the standard fields are never replaced)."""
        return {}


class PublisherRegistry:
    """Custom publishers by name. A declaration naming an unregistered publisher is published
    by the default publisher (the step's result as payload), as tasker-core does."""

    def __init__(self) -> None:
        self._publishers: dict[str, EventPublisher] = {}

    def register(self, publisher: EventPublisher, *, name: str | None = None) -> None:
        key = name or publisher.name
        if not key:
            raise ValueError("a publisher needs a name (set EventPublisher.name or pass name=)")
        self._publishers[key] = publisher

    def unregister(self, name: str) -> None:
        self._publishers.pop(name, None)

    def get(self, name: str | None) -> EventPublisher | None:
        return None if name is None else self._publishers.get(name)


@dataclass(frozen=True, slots=True)
class Subscription:
    patterns: tuple[str, ...]
    handler: Callable[[DomainEvent], Any]

    def matches(self, event_name: str) -> bool:
        return any(fnmatch.fnmatchcase(event_name, p) for p in self.patterns)


class SubscriberRegistry:
    """In-process subscribers to fast and broadcast events (thread-safe registration)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscriptions: tuple[Subscription, ...] = ()

    def add(self, patterns: Iterable[str], handler: Callable[[DomainEvent], Any]) -> None:
        found = tuple(patterns)
        if not found or not all(isinstance(p, str) and p for p in found):
            raise ValueError(f"subscribe needs one or more non-empty patterns, got {found!r}")
        if not callable(handler):
            raise TypeError(f"subscriber {handler!r} is not callable")
        with self._lock:
            self._subscriptions = (*self._subscriptions, Subscription(found, handler))

    def subscribe(self, *patterns: str) -> Callable[[F], F]:
        """Decorator: `@subscribe("order.*")` runs the function for each matching event."""
        def decorate(fn: F) -> F:
            self.add(patterns, fn)
            return fn
        return decorate

    def register(self, subscriber: Any) -> None:
        """An object in tasker-core's BaseSubscriber style: `subscribes_to()` lists its
        patterns, `handle(event)` receives each matching event."""
        self.add(subscriber.subscribes_to(), subscriber.handle)

    def remove(self, handler: Callable[..., Any]) -> None:
        with self._lock:
            self._subscriptions = tuple(s for s in self._subscriptions
                                        if s.handler is not handler)

    def clear(self) -> None:
        with self._lock:
            self._subscriptions = ()

    def matching(self, event_name: str) -> list[Callable[[DomainEvent], Any]]:
        return [s.handler for s in self._subscriptions if s.matches(event_name)]

    @property
    def count(self) -> int:
        return len(self._subscriptions)

    @property
    def pattern_count(self) -> int:
        return sum(len(s.patterns) for s in self._subscriptions)


default_subscribers = SubscriberRegistry()
default_publishers = PublisherRegistry()


def subscribe(*patterns: str) -> Callable[[F], F]:
    """`@subscribe("order.*", "payment.failed")`: an in-process subscriber of this worker."""
    return default_subscribers.subscribe(*patterns)


def register_publisher(publisher: EventPublisher, *, name: str | None = None) -> None:
    """Register a custom publisher under its name (the `publisher:` of a declaration)."""
    default_publishers.register(publisher, name=name)
