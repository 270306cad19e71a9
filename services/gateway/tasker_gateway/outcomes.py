"""Task request outcomes: ingestion's NOTIFY (`tasker_task_request_outcomes`) routed to the
request waiting for it, with the `task_request_outcomes` table as the fallback."""

from __future__ import annotations

from collections.abc import Iterator
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


@dataclass(frozen=True, kw_only=True, slots=True)
class IngestionOutcome:
    """What ingestion did with one request (error_code is only known from the NOTIFY)."""

    request_id: str
    outcome: str  # created / duplicate / invalid
    task_uuid: UUID | None
    reason: str | None
    error_code: str | None = None


class Waiter:
    """One request's slot: set once by the notification that names it."""

    __slots__ = ("event", "outcome")

    def __init__(self) -> None:
        self.event = trio.Event()
        self.outcome: IngestionOutcome | None = None


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

    def statistics(self) -> dict[str, int]:
        return {"waiting": len(self._waiting), "received": self.received,
                "matched": self.matched, "malformed": self.malformed}


def read_outcome(conn: Conn, request_id: str) -> IngestionOutcome | None:
    """The recorded outcome of a request, if ingestion has processed it."""
    row = conn.execute(
        "SELECT request_id, outcome, task_uuid, reason FROM tasker.task_request_outcomes"
        " WHERE request_id = %s", (request_id,)).fetchone()
    if row is None:
        return None
    return IngestionOutcome(request_id=row["request_id"], outcome=row["outcome"],
                            task_uuid=row["task_uuid"], reason=row["reason"])
