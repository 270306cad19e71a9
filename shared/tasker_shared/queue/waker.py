"""What wakes a consumer: NOTIFY payloads, a fallback poll timer, and timers for delayed
messages (a notification whose `ready_at` lies in the future)."""

from __future__ import annotations

import heapq
import json
import time
from dataclasses import dataclass

import trio


@dataclass(frozen=True, kw_only=True, slots=True)
class Wake:
    ids: list[int]
    poll: bool


class Waker:
    """Collects reasons to look at a queue; `next()` returns them batched."""

    def __init__(self, *, poll_interval_seconds: float, polls: bool) -> None:
        self.poll_interval_seconds = poll_interval_seconds
        self.polls = polls
        self._ids: set[int] = set()
        self._poll = True  # look once at start: messages may be waiting
        self._event = trio.Event()
        self._event.set()
        self._timers: list[tuple[float, int]] = []
        self._timers_changed = trio.Event()
        self.notifications = 0
        self.last_poll_at: float | None = None

    def on_notification(self, payload: str) -> None:
        self.notifications += 1
        try:
            data = json.loads(payload)
            msg_id = int(data["msg_id"])
            ready_at = float(data.get("ready_at", 0.0))
        except (ValueError, KeyError, TypeError):
            self.request_poll()  # unreadable payload: fall back to looking
            return
        delay = ready_at - time.time()
        if delay > 0.002:
            heapq.heappush(self._timers, (trio.current_time() + delay, msg_id))
            self._timers_changed.set()
            return
        self._ids.add(msg_id)
        self._event.set()

    def request_poll(self) -> None:
        self._poll = True
        self._event.set()

    async def next(self) -> Wake:
        await self._event.wait()
        self._event = trio.Event()
        ids = sorted(self._ids)
        self._ids.clear()
        poll, self._poll = self._poll, False
        if poll:
            self.last_poll_at = time.time()
        return Wake(ids=ids, poll=poll)

    async def run_poller(self) -> None:
        while True:
            await trio.sleep(self.poll_interval_seconds)
            self.request_poll()

    async def run_timers(self) -> None:
        while True:
            self._timers_changed = trio.Event()
            if not self._timers:
                await self._timers_changed.wait()
                continue
            deadline = self._timers[0][0]
            with trio.move_on_at(deadline):
                await self._timers_changed.wait()
                continue
            now = trio.current_time()
            while self._timers and self._timers[0][0] <= now:
                _, msg_id = heapq.heappop(self._timers)
                self._ids.add(msg_id)
            self._event.set()
