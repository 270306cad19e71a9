"""StepContext: everything a handler sees about its step, task, dependencies and batch."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tasker_shared.errors import ContractError
from tasker_worker.sdk.cancellation import CancelToken
from tasker_worker.sdk.heartbeat import (
    WAIT_SECONDS,
    HeartbeatReport,
    HeartbeatSink,
    in_async_context,
    wait_for,
)

__all__ = ["BatchWorkerContext", "StepContext"]

_MISSING = object()


@dataclass(frozen=True, kw_only=True, slots=True)
class BatchWorkerContext:
    """A batch worker's slice of the data: its cursor range, policy and checkpointed progress.

    `start_cursor` is inclusive, `end_cursor` exclusive. `resume_cursor` is the cursor of
    the last checkpoint (None without one); `effective_start_cursor` is where to begin.
    """

    batch_id: str
    start_cursor: Any
    end_cursor: Any
    batch_size: int
    is_no_op: bool
    cursor_field: str | None
    failure_strategy: str | None
    resume_cursor: Any
    accumulated_results: dict[str, Any] | None
    items_processed: int

    @property
    def effective_start_cursor(self) -> Any:
        """The checkpointed cursor when resuming, else `start_cursor`."""
        return self.start_cursor if self.resume_cursor is None else self.resume_cursor


@dataclass(frozen=True, kw_only=True, slots=True)
class StepContext:
    """The input of one step execution. `attempt` is 1-based and counts the current run.

    Cancellation: when the task is cancelled, the step is resolved or re-claimed elsewhere,
    or the handler runs past its timeout, the run is cancelled and its result is discarded.
    An `async def` handler is cancelled at its next `await`; a sync handler (in a thread
    nothing can stop) is told through `cancelled`, `check_cancelled()`, `wait_cancelled()`
    and `on_cancel()` and should stop soon after.
    """

    task_uuid: str
    step_uuid: str
    correlation_id: str
    step_name: str
    handler_name: str
    namespace: str
    task_name: str
    task_version: str
    task_context: dict[str, Any] = field(default_factory=dict)
    step_inputs: dict[str, Any] = field(default_factory=dict)
    step_config: dict[str, Any] = field(default_factory=dict)
    dependency_results: dict[str, dict[str, Any]] = field(default_factory=dict)
    attempt: int = 1
    max_attempts: int = 1
    deadline: float | None = None
    checkpoint: dict[str, Any] | None = None
    cancel_token: CancelToken = field(default_factory=CancelToken, compare=False, repr=False)
    heartbeat_sink: HeartbeatSink | None = field(default=None, compare=False, repr=False)

    @property
    def cancelled(self) -> bool:
        """True once this run was cancelled (see the class docstring)."""
        return self.cancel_token.cancelled

    @property
    def cancel_reason(self) -> str | None:
        """Why this run was cancelled, or None."""
        return self.cancel_token.reason

    def check_cancelled(self) -> None:
        """Raise StepCancelled when this run was cancelled: call it between units of work."""
        self.cancel_token.check()

    def wait_cancelled(self, timeout: float | None = None) -> bool:
        """Sleep up to `timeout` seconds, waking early on cancellation; True if cancelled.
        (Blocking: for sync handlers. Async handlers are cancelled at their next await.)"""
        return self.cancel_token.wait(timeout)

    def on_cancel(self, callback: Callable[[str], object]) -> Callable[[], None]:
        """Call `callback(reason)` (from the worker's thread) when this run is cancelled,
        e.g. to close a connection a sync handler is blocked on; returns an unregister
        function."""
        return self.cancel_token.on_cancel(callback)

    def heartbeat(self, progress: Any = None, *, message: str | None = None) -> None:
        """Report progress and keep this step's claim: the worker extends the claim's lease
        at once and stores the report where an operator sees it (the step's `progress`).
        For sync handlers (it blocks for one database round trip); an `async def` handler
        uses `await ctx.aheartbeat(...)`, and calling this from one raises RuntimeError.

        `progress` is any small JSON value (a fraction, counts, a cursor); `message` a line
        of text. Reports closer together than a second are coalesced: the latest one is
        written at the end of that second. Raises StepCancelled when the run is cancelled,
        including when this heartbeat finds the claim lost (task cancelled, step resolved,
        or taken by a later attempt after this run's lease expired): the run is then
        cancelled as the worker's watcher would do it, and its result is discarded.
        """
        report = HeartbeatReport.of(progress, message)
        self.check_cancelled()
        if self.heartbeat_sink is None:
            return
        if in_async_context():
            raise RuntimeError("StepContext.heartbeat blocks; in an async def handler use "
                               "`await ctx.aheartbeat(...)`")
        try:
            self.heartbeat_sink.send(report).result(timeout=WAIT_SECONDS)
        except TimeoutError:  # the worker is stopping or its database hangs: carry on
            pass
        self.check_cancelled()

    async def aheartbeat(self, progress: Any = None, *, message: str | None = None) -> None:
        """`heartbeat` for `async def` handlers (asyncio or Trio): waits for the write
        without blocking the event loop. When the claim is lost, raises StepCancelled, or
        the event loop's own cancellation if that reaches the handler first."""
        report = HeartbeatReport.of(progress, message)
        self.check_cancelled()
        if self.heartbeat_sink is None:
            return
        await wait_for(self.heartbeat_sink.send(report))
        self.check_cancelled()

    @property
    def input_data(self) -> dict[str, Any]:
        """Alias of `task_context`: the task's `context` JSON."""
        return self.task_context

    def get_input(self, key: str) -> Any:
        """The task context's `key`, or None when absent."""
        return self.task_context.get(key)

    def get_input_or(self, key: str, default: Any) -> Any:
        """The task context's `key`, or `default` when absent."""
        return self.task_context.get(key, default)

    def get_config(self, key: str, default: Any = None) -> Any:
        """The step's handler initialization `key`, or `default` when absent."""
        return self.step_config.get(key, default)

    def dependency_result(self, name: str) -> Any:
        """The `result` payload of dependency step `name`; KeyError if it is not a dependency.

        A stored value without a `result` field (e.g. a manually completed step) is returned
        as it is.
        """
        try:
            stored = self.dependency_results[name]
        except KeyError:
            available = ", ".join(sorted(self.dependency_results)) or "none"
            raise KeyError(
                f"step {self.step_name!r} has no result from dependency {name!r} "
                f"(available: {available})"
            ) from None
        if isinstance(stored, Mapping) and "result" in stored:
            return stored["result"]
        return stored

    def dependency_field(self, name: str, *path: str | int) -> Any:
        """A nested field of dependency `name`'s result (keys and list indexes), None if absent.

        KeyError when `name` is not a dependency at all.
        """
        value = self.dependency_result(name)
        for part in path:
            value = _step_into(value, part)
            if value is _MISSING:
                return None
        return value

    @property
    def is_retry(self) -> bool:
        """True when an earlier attempt of this step already ran."""
        return self.attempt > 1

    @property
    def is_last_attempt(self) -> bool:
        """True when a failure now will not be retried for lack of attempts."""
        return self.attempt >= self.max_attempts

    @property
    def has_checkpoint(self) -> bool:
        """True when an earlier run of this step saved a checkpoint."""
        return self.checkpoint is not None

    @property
    def checkpoint_cursor(self) -> Any:
        """The cursor of the saved checkpoint, or None."""
        return None if self.checkpoint is None else self.checkpoint.get("cursor")

    @property
    def batch(self) -> BatchWorkerContext | None:
        """The batch worker view, or None when this step is not a batch worker.

        Read from `step_inputs`, else from `step_config`: whichever carries `cursor`.
        ContractError when the cursor is malformed.
        """
        source = _batch_source(self.step_inputs) or _batch_source(self.step_config)
        if source is None:
            return None
        cursor = source["cursor"]
        if not isinstance(cursor, Mapping) or "batch_id" not in cursor:
            raise ContractError(f"step {self.step_name!r} has a malformed batch cursor: {cursor!r}")
        meta = source.get("batch_metadata") or {}
        saved = self.checkpoint or {}
        accumulated = saved.get("accumulated_results")
        return BatchWorkerContext(
            batch_id=str(cursor["batch_id"]),
            start_cursor=cursor.get("start_cursor"),
            end_cursor=cursor.get("end_cursor"),
            batch_size=int(cursor.get("batch_size") or 0),
            is_no_op=bool(source.get("is_no_op", False)),
            cursor_field=meta.get("cursor_field"),
            failure_strategy=meta.get("failure_strategy"),
            resume_cursor=saved.get("cursor"),
            accumulated_results=dict(accumulated) if isinstance(accumulated, Mapping) else None,
            items_processed=int(saved.get("items_processed") or 0),
        )


def _batch_source(values: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """`values` when it describes a batch worker (has a `cursor`), else None."""
    return values if values.get("cursor") is not None else None


def _step_into(value: Any, part: str | int) -> Any:
    """`value[part]` for a mapping key or a list index, or `_MISSING`."""
    if isinstance(value, Mapping):
        return value.get(part, _MISSING)
    if isinstance(value, list) and isinstance(part, int) and -len(value) <= part < len(value):
        return value[part]
    return _MISSING
