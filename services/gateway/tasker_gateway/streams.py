"""Fan-out of task and step transition NOTIFYs (`tasker_task_events`, `tasker_step_events`)
to the StreamTaskStatus subscribers of each task.

The gateway LISTENs on these channels only while someone watches (and a while after the last
watcher left): every step sends two or three of them (each write announces the transitions it
logged), which a gateway nobody watches through would only receive and drop."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

import structlog
import trio

from tasker_shared.db.listen import RECONNECTED, Notification, NotificationListener
from tasker_shared.domain.limits import loads_bounded
from tasker_shared.errors import ValidationError

log = structlog.get_logger("tasker.gateway.streams")

TASK_EVENTS_CHANNEL = "tasker_task_events"
STEP_EVENTS_CHANNEL = "tasker_step_events"
SUBSCRIPTION_CAPACITY = 256
LINGER_SECONDS = 30.0  # the listener stays this long after the last watcher left


@dataclass(frozen=True, kw_only=True, slots=True)
class StateEvent:
    """One transition as announced by the database."""

    task_uuid: UUID
    step_uuid: UUID | None  # None for a task transition
    from_state: str | None
    to_state: str
    event: str


def parse_events(payload: str, *, step: bool) -> list[StateEvent] | None:
    """The transitions a notification announces, in order; None when it is malformed.

    The database sends one notification per write: {task_uuid, step_uuid (step channel),
    states: [s0, s1, ..., sn], events: [e1, ..., en]} for the transitions s0 -> s1 -> ... ->
    sn (s0 null for a first transition). A notification of one transition in the form
    written before, {task_uuid, step_uuid, from_state, to_state, event}, is read as well."""
    try:
        data: Any = loads_bounded(payload, what="notification payload")
        task_uuid = UUID(data["task_uuid"])
        step_uuid = UUID(data["step_uuid"]) if step else None
        if "states" not in data:
            return [StateEvent(task_uuid=task_uuid, step_uuid=step_uuid,
                               from_state=data.get("from_state"),
                               to_state=str(data["to_state"]),
                               event=str(data.get("event", "")))]
        states, events = data["states"], data["events"]
        if not isinstance(states, list) or not isinstance(events, list) or not events or len(
                states) != len(events) + 1 or not all(isinstance(x, str) for x in states[1:]):
            return None
        return [StateEvent(task_uuid=task_uuid, step_uuid=step_uuid, from_state=states[i],
                           to_state=states[i + 1], event=str(events[i]))
                for i in range(len(events))]
    except (ValueError, TypeError, KeyError, AttributeError, ValidationError):
        return None


class Subscription:
    """Events of one task for one watcher; `overflowed` means some were dropped, and None
    in the channel that some may have been missed (the watcher reads the task again)."""

    def __init__(self, task_uuid: UUID, capacity: int) -> None:
        self.task_uuid = task_uuid
        self.send, self.receive = trio.open_memory_channel[StateEvent | None](capacity)
        self.overflowed = False

    def offer(self, event: StateEvent | None) -> None:
        try:
            self.send.send_nowait(event)
        except trio.WouldBlock:
            self.overflowed = True


class StatusHub:
    """Routes each notification to the subscriptions of its task (no database access)."""

    def __init__(self, *, capacity: int = SUBSCRIPTION_CAPACITY) -> None:
        self.capacity = capacity
        self._subs: dict[UUID, set[Subscription]] = {}
        self.delivered = 0
        self.malformed = 0
        self.listening = False  # `serve` has its LISTEN in place
        self.listens = 0  # times `serve` started listening
        self._watched = trio.Event()  # set while someone watches (or until `serve` sees it)

    @property
    def active(self) -> int:
        return sum(len(s) for s in self._subs.values())

    def subscribe(self, task_uuid: UUID) -> Subscription:
        sub = Subscription(task_uuid, self.capacity)
        self._subs.setdefault(task_uuid, set()).add(sub)
        self._watched.set()
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        subs = self._subs.get(sub.task_uuid)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._subs[sub.task_uuid]
        sub.send.close()

    def on_task_event(self, note: Notification) -> None:
        if self._subs:  # every transition is announced: read only while someone watches
            self._route(parse_events(note.payload, step=False), note)

    def on_step_event(self, note: Notification) -> None:
        if self._subs:
            self._route(parse_events(note.payload, step=True), note)

    def _route(self, events: list[StateEvent] | None, note: Notification) -> None:
        if events is None:
            self.malformed += 1
            log.warning("malformed_state_notification", channel=note.channel,
                        payload=note.payload[:200])
            return
        for event in events:
            for sub in self._subs.get(event.task_uuid, ()):
                self.delivered += 1
                sub.offer(event)

    def resync(self) -> None:
        """The listener reconnected: what was announced while it was away was not heard, so
        every watcher reads its task again now (not at its next quiet-period resync)."""
        for subs in self._subs.values():
            for sub in subs:
                sub.offer(None)

    def statistics(self) -> dict[str, int]:
        return {"subscriptions": self.active, "delivered": self.delivered,
                "malformed": self.malformed, "listening": int(self.listening),
                "listens": self.listens}

    async def serve(self, url: str, *, linger_seconds: float = LINGER_SECONDS) -> None:
        """LISTEN on the transition channels of `url` while anyone watches, and until no one
        has for `linger_seconds`. Once the LISTEN is in place (and after every reconnect),
        every watcher reads its task again: what was announced before was not heard."""
        while True:
            await self._watched.wait()
            listener = NotificationListener(url, [TASK_EVENTS_CHANNEL, STEP_EVENTS_CHANNEL])
            try:
                async with trio.open_nursery() as nursery:
                    await nursery.start(listener.run, self.on_notification)
                    self.listening = True
                    self.listens += 1
                    self.resync()
                    while True:
                        await trio.sleep(linger_seconds)
                        if not self._subs:
                            break
                    nursery.cancel_scope.cancel()
            finally:
                self.listening = False
            self._watched = trio.Event()
            if self._subs:  # subscribed while the listener was being stopped
                self._watched.set()

    def on_notification(self, note: Notification) -> None:
        """What the listener hears, by channel."""
        if note.channel == RECONNECTED:
            self.resync()
        elif note.channel == TASK_EVENTS_CHANNEL:
            self.on_task_event(note)
        elif note.channel == STEP_EVENTS_CHANNEL:
            self.on_step_event(note)
