"""Heartbeats, the handler's side: a progress report, its bounds, and how a handler waits for
the worker to write it (see `StepContext.heartbeat` / `aheartbeat`)."""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Protocol

import sniffio

from tasker_shared.domain.limits import check_json

__all__ = ["MAX_MESSAGE_CHARS", "MAX_PROGRESS_BYTES", "HeartbeatReport", "HeartbeatSink"]

MAX_PROGRESS_BYTES = 8192
"""The largest `progress` value (its JSON) a heartbeat may carry."""
MAX_PROGRESS_DEPTH = 16
MAX_MESSAGE_CHARS = 1000
"""The longest heartbeat `message`."""
WAIT_SECONDS = 30.0
"""The longest a sync handler's heartbeat waits for its write (the worker bounds the write
itself well below this; this only guards against a worker that stopped meanwhile)."""


@dataclass(frozen=True, slots=True)
class HeartbeatReport:
    """One progress report: any small JSON value and an optional human-readable line."""

    progress: Any = None
    message: str | None = None

    @classmethod
    def of(cls, progress: Any, message: str | None) -> HeartbeatReport:
        """A report, checked: `progress` must be JSON (at most MAX_PROGRESS_BYTES, nested at
        most MAX_PROGRESS_DEPTH deep) and `message` a string of at most MAX_MESSAGE_CHARS;
        TypeError, ValueError or JsonLimitError naming what is wrong otherwise."""
        if message is not None and not isinstance(message, str):
            raise TypeError(f"heartbeat message must be a string, not {type(message).__name__}")
        if message is not None and len(message) > MAX_MESSAGE_CHARS:
            raise ValueError(f"heartbeat message is {len(message)} characters; at most "
                             f"{MAX_MESSAGE_CHARS} are allowed")
        check_json(progress, what="heartbeat progress", max_depth=MAX_PROGRESS_DEPTH,
                   max_bytes=MAX_PROGRESS_BYTES)
        try:
            json.dumps(progress, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"heartbeat progress must be JSON data: {exc}") from None
        return cls(progress=progress, message=message)

    def to_json(self) -> dict[str, Any]:
        return {"progress": self.progress, "message": self.message}


class HeartbeatSink(Protocol):
    """Where a context sends its heartbeats (the worker gives each run one)."""

    def send(self, report: HeartbeatReport) -> Future[None]:
        """Take `report` (from any thread, without blocking); the future is done once it
        is written, or at once when it is coalesced with the next write. A run that lost
        its claim is cancelled (its CancelToken) before the future is done."""
        ...


def in_async_context() -> bool:
    """True when called from a coroutine of asyncio or Trio (where blocking is wrong)."""
    try:
        sniffio.current_async_library()
    except sniffio.AsyncLibraryNotFoundError:
        return False
    return True


async def wait_for(future: Future[None]) -> None:
    """Await `future` from asyncio or Trio, without a thread."""
    library = sniffio.current_async_library()
    if library == "asyncio":
        await asyncio.wrap_future(future)
        return
    if library != "trio":
        raise RuntimeError(f"heartbeats support asyncio and Trio handlers, not {library}")
    import trio

    token = trio.lowlevel.current_trio_token()
    done = trio.Event()

    def wake(_: object) -> None:
        try:
            token.run_sync_soon(done.set)
        except trio.RunFinishedError:
            pass

    future.add_done_callback(wake)
    await done.wait()
