"""Task request outcomes: ingestion's NOTIFY (`tasker_task_request_outcomes`) routed to the
request waiting for it, with the `task_request_outcomes` table as the fallback: read when no
listener is connected (polling), when the listener reconnected (an outcome sent while it was
away was never heard), and at the deadline."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import structlog
import trio

from tasker_shared.db.database import Conn
from tasker_shared.db.listen import Notification
from tasker_shared.domain.limits import loads_bounded
from tasker_shared.errors import ConflictError, ValidationError

log = structlog.get_logger("tasker.gateway.outcomes")

OUTCOME_CHANNEL = "tasker_task_request_outcomes"
_POLL_FIRST, _POLL_MAX = 0.01, 0.25  # seconds between table reads while not listening


@dataclass(frozen=True, kw_only=True, slots=True)
class IngestionOutcome:
    """What ingestion did with one request (error_code is only known from the NOTIFY)."""

    request_id: str
    outcome: str  # created / duplicate / invalid
    task_uuid: UUID | None
    reason: str | None
    error_code: str | None = None


class Waiter:
    """One request's slot: its event is set by the notification that names it, or by a
    reconnected listener (`recheck`: read the table)."""

    __slots__ = ("event", "outcome", "recheck")

    def __init__(self) -> None:
        self.event = trio.Event()
        self.outcome: IngestionOutcome | None = None
        self.recheck = False

    def rearm(self) -> None:
        self.event = trio.Event()
        self.recheck = False


ReadOutcomes = Callable[[list[str]], Awaitable[dict[str, "IngestionOutcome"]]]


def parse_outcome(payload: str) -> IngestionOutcome | None:
    """The outcome in a NOTIFY payload; None when the payload is not one."""
    try:
        data: Any = loads_bounded(payload, what="notification payload")
        request_id = data["request_id"]
        task = data.get("task_uuid")
        return IngestionOutcome(
            request_id=str(request_id), outcome=str(data["outcome"]),
            task_uuid=UUID(task) if task else None, reason=data.get("reason"),
            error_code=data.get("error_code"))
    except (ValueError, TypeError, KeyError, AttributeError, ValidationError):
        return None


class OutcomeWaiter:
    """Routes outcome notifications to the requests registered with `expect`."""

    def __init__(self) -> None:
        self._waiting: dict[str, Waiter] = {}
        self.received = 0
        self.matched = 0
        self.malformed = 0

    @contextmanager
    def expect(self, request_id: str) -> Iterator[Waiter]:
        """Register before sending the request, so the outcome cannot slip past."""
        if request_id in self._waiting:
            raise ConflictError(f"task request {request_id} is already being created")
        waiter = Waiter()
        self._waiting[request_id] = waiter
        try:
            yield waiter
        finally:
            if self._waiting.get(request_id) is waiter:
                del self._waiting[request_id]

    def on_notification(self, note: Notification) -> None:
        self.received += 1
        outcome = parse_outcome(note.payload)
        if outcome is None:
            self.malformed += 1
            log.warning("malformed_outcome_notification", payload=note.payload[:200])
            return
        waiter = self._waiting.get(outcome.request_id)
        if waiter is not None and waiter.outcome is None:
            self.matched += 1
            waiter.outcome = outcome
            waiter.event.set()

    def resync(self) -> None:
        """The listener reconnected: outcomes sent while it was away were not heard, so every
        request still waiting reads the table once."""
        for waiter in self._waiting.values():
            if waiter.outcome is None:
                waiter.recheck = True
                waiter.event.set()

    async def gather(self, waiters: dict[str, Waiter], deadline: float, *,
                     listening: Callable[[], bool], read: ReadOutcomes,
                     ) -> dict[str, IngestionOutcome]:
        """The outcomes of `waiters` known by `deadline` (trio time): heard while the
        listener is connected, read with `read` (the table) when it is not, after it
        reconnected, and at the deadline. Requests without an outcome are left out."""
        found: dict[str, IngestionOutcome] = {}
        pause = _POLL_FIRST
        while True:
            found.update(_heard(waiters))
            missing = [rid for rid in waiters if rid not in found]
            if not missing:
                return found
            if listening() and trio.current_time() < deadline:
                with trio.move_on_at(deadline):
                    for rid in missing:  # each set by its outcome or by a resync
                        await waiters[rid].event.wait()
                found.update(_heard(waiters))
                missing = [rid for rid in waiters if rid not in found]
                if not missing:
                    return found
            for rid in missing:  # an outcome heard from here on sets the new event
                waiters[rid].rearm()
            found.update(await read(missing))
            remaining = deadline - trio.current_time()
            if len(found) == len(waiters) or remaining <= 0:
                return found
            if not listening():
                await trio.sleep(min(pause, remaining))
                pause = min(pause * 2, _POLL_MAX)

    def statistics(self) -> dict[str, int]:
        return {"waiting": len(self._waiting), "received": self.received,
                "matched": self.matched, "malformed": self.malformed}


def _heard(waiters: dict[str, Waiter]) -> dict[str, IngestionOutcome]:
    return {rid: w.outcome for rid, w in waiters.items() if w.outcome is not None}


def read_outcomes(conn: Conn, request_ids: list[str]) -> dict[str, IngestionOutcome]:
    """The recorded outcomes of the requests ingestion has processed."""
    rows = conn.execute(
        "SELECT request_id, outcome, task_uuid, reason FROM tasker.task_request_outcomes"
        " WHERE request_id = ANY(%s::text[])", (request_ids,)).fetchall()
    return {r["request_id"]: IngestionOutcome(request_id=r["request_id"], outcome=r["outcome"],
                                              task_uuid=r["task_uuid"], reason=r["reason"])
            for r in rows}


def read_outcome(conn: Conn, request_id: str) -> IngestionOutcome | None:
    """The recorded outcome of a request, if ingestion has processed it."""
    return read_outcomes(conn, [request_id]).get(request_id)
