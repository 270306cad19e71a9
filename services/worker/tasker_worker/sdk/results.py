"""StepResult: what a handler returns, its helpers, and its StepExecutionResult JSON (SPEC §1.4)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tasker_shared.domain.classify import classify_exception
from tasker_worker.sdk.errors import retry_after_header

__all__ = [
    "StepResult",
    "batches",
    "checkpoint",
    "decision",
    "failure",
    "failure_from_exception",
    "no_batches",
    "no_branches",
    "success",
]

_CURSOR_KEYS = ("batch_id", "start_cursor", "end_cursor", "batch_size")
_BACKOFF_TYPES = {429: "rate_limit", 503: "service_unavailable"}


@dataclass(frozen=True, kw_only=True, slots=True)
class StepResult:
    """A handler's outcome. Build one with `success`, `failure`, `checkpoint`, `decision`, ...

    `metadata` is the handler's custom metadata (`metadata.custom` in the JSON).
    """

    success: bool
    result: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    error_message: str | None = None
    error_type: str | None = None
    error_code: str | None = None
    retryable: bool = False
    status_code: int | None = None
    error_context: dict[str, Any] = field(default_factory=dict)
    backtrace: tuple[str, ...] | None = None
    retry_after: str | None = None
    backoff_hint_seconds: float | None = None
    checkpoint_yield: bool = False

    @property
    def is_checkpoint(self) -> bool:
        """True when this is a checkpoint yield: persist progress and run the step again."""
        return self.checkpoint_yield

    def to_execution_result(
        self,
        *,
        step_uuid: str,
        execution_time_ms: int,
        started_at: datetime,
        completed_at: datetime,
        worker_id: str | None,
    ) -> dict[str, Any]:
        """The StepExecutionResult JSON stored in `workflow_steps.results`.

        `metadata.retryable` equals `error.retryable` (orchestration reads the former);
        it is false on success. Naive datetimes are taken as UTC.
        """
        metadata: dict[str, Any] = {
            "execution_time_ms": max(0, int(execution_time_ms)),
            "retryable": False,
            "completed_at": _iso(completed_at),
            "started_at": _iso(started_at),
            "worker_id": worker_id,
            "context": {},
            "custom": dict(self.metadata),
        }
        if self.success:
            if self.checkpoint_yield:
                metadata["checkpoint_yield"] = True
            return {
                "step_uuid": step_uuid,
                "success": True,
                "status": "completed",
                "result": dict(self.result),
                "metadata": metadata,
            }
        error_type = self.error_type or "handler_error"
        error: dict[str, Any] = {
            "message": self.error_message or "step failed",
            "error_type": error_type,
            "retryable": self.retryable,
        }
        if self.backtrace is not None:
            error["backtrace"] = list(self.backtrace)
        if self.status_code is not None:
            error["status_code"] = self.status_code
        if self.error_context:
            error["context"] = dict(self.error_context)
        metadata["retryable"] = self.retryable
        metadata["error_type"] = error_type
        if self.error_code is not None:
            metadata["error_code"] = self.error_code
        metadata["context"] = dict(self.error_context)
        payload: dict[str, Any] = {
            "step_uuid": step_uuid,
            "success": False,
            "status": "failed",
            "result": {},
            "error": error,
            "metadata": metadata,
        }
        orchestration = self._orchestration_metadata()
        if orchestration is not None:
            payload["orchestration_metadata"] = orchestration
        return payload

    def _orchestration_metadata(self) -> dict[str, Any] | None:
        """Retry-After header and backoff hint for the backoff calculator, if any."""
        if self.retry_after is None and self.backoff_hint_seconds is None:
            return None
        headers: dict[str, str] = {}
        if self.retry_after is not None:
            headers["Retry-After"] = self.retry_after
        out: dict[str, Any] = {"headers": headers, "custom": {}}
        if self.backoff_hint_seconds is not None:
            backoff_type = _BACKOFF_TYPES.get(self.status_code or 0, "custom")
            out["backoff_hint"] = {
                "backoff_type": backoff_type,
                # whole seconds (the contract's uint32), rounded up: never shorter than asked
                "delay_seconds": math.ceil(self.backoff_hint_seconds),
            }
        return out


def _iso(moment: datetime) -> str:
    """ISO-8601 text in UTC; a naive datetime is taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat()


def success(
    result: Mapping[str, Any] | None = None, *, metadata: Mapping[str, Any] | None = None
) -> StepResult:
    """A successful result carrying `result` (default `{}`) and custom `metadata`."""
    return StepResult(success=True, result=dict(result or {}), metadata=dict(metadata or {}))


def failure(
    message: str,
    *,
    error_type: str = "handler_error",
    retryable: bool = True,
    status_code: int | None = None,
    context: Mapping[str, Any] | None = None,
    retry_after: str | float | None = None,
    backoff_hint_seconds: float | None = None,
    metadata: Mapping[str, Any] | None = None,
    error_code: str | None = None,
    backtrace: Sequence[str] | None = None,
) -> StepResult:
    """A failed result. `retry_after` (seconds or HTTP date) becomes a Retry-After header."""
    if backoff_hint_seconds is not None and backoff_hint_seconds < 0:
        raise ValueError("backoff_hint_seconds must not be negative")
    return StepResult(
        success=False,
        metadata=dict(metadata or {}),
        error_message=message,
        error_type=error_type,
        error_code=error_code,
        retryable=retryable,
        status_code=status_code,
        error_context=dict(context or {}),
        backtrace=None if backtrace is None else tuple(backtrace),
        retry_after=retry_after_header(retry_after),
        backoff_hint_seconds=backoff_hint_seconds,
    )


def failure_from_exception(exc: BaseException, *, traceback_lines: list[str]) -> StepResult:
    """A failed result for an exception a handler raised, classified by `domain.classify`.

    `error_type` is the exception's class name, unless the exception carries a string
    `error_type` (SDK errors do: `permanent_error`, `rate_limit`, `handler_not_found`, ...).
    `status_code`, `context`, `error_code` and `retry_after` attributes are carried over.
    """
    classification = classify_exception(exc)
    declared_type = getattr(exc, "error_type", None)
    status_code = getattr(exc, "status_code", None)
    context = getattr(exc, "context", None)
    error_code = getattr(exc, "error_code", None)
    retry_after = getattr(exc, "retry_after", None)
    return failure(
        str(exc) or type(exc).__name__,
        error_type=declared_type if isinstance(declared_type, str) else classification.error_type,
        retryable=classification.retryable,
        status_code=status_code if isinstance(status_code, int) else None,
        context=context if isinstance(context, Mapping) else None,
        retry_after=retry_after if isinstance(retry_after, str | int | float) else None,
        error_code=error_code if isinstance(error_code, str) else None,
        backtrace=traceback_lines,
    )


def checkpoint(
    cursor: Any, items_processed: int, accumulated_results: Mapping[str, Any] | None = None
) -> StepResult:
    """A checkpoint yield: progress so far; the worker persists it and re-runs the step."""
    if items_processed < 0:
        raise ValueError("items_processed must not be negative")
    return StepResult(
        success=True,
        result={
            "cursor": cursor,
            "items_processed": items_processed,
            "accumulated_results": None
            if accumulated_results is None
            else dict(accumulated_results),
        },
        checkpoint_yield=True,
    )


def decision(step_names: Sequence[str], *, extra: Mapping[str, Any] | None = None) -> StepResult:
    """A decision-point result creating `step_names` (de-duplicated, order kept).

    An empty list means no branches. `extra` adds fields next to the outcome in `result`.
    """
    if isinstance(step_names, str):
        raise TypeError("step_names must be a sequence of names, not a string")
    names: list[str] = []
    for name in step_names:
        if not isinstance(name, str) or not name:
            raise TypeError(f"step names must be non-empty strings, got {name!r}")
        if name not in names:
            names.append(name)
    if not names:
        return no_branches(extra=extra)
    outcome = {"type": "create_steps", "step_names": names}
    return success({**dict(extra or {}), "decision_point_outcome": outcome})


def no_branches(*, extra: Mapping[str, Any] | None = None) -> StepResult:
    """A decision-point result that creates no steps."""
    return success({**dict(extra or {}), "decision_point_outcome": {"type": "no_branches"}})


def batches(
    cursor_configs: Sequence[Mapping[str, Any]],
    *,
    worker_template_name: str,
    total_items: int,
    extra: Mapping[str, Any] | None = None,
) -> StepResult:
    """A batchable-step result creating one worker per cursor config.

    Each config needs `batch_id`, `start_cursor`, `end_cursor` and `batch_size`. An empty
    list means no batches (the placeholder worker and convergence still run).
    """
    if not worker_template_name:
        raise ValueError("worker_template_name is required")
    configs: list[dict[str, Any]] = []
    for config in cursor_configs:
        missing = [key for key in _CURSOR_KEYS if key not in config]
        if missing:
            raise ValueError(f"cursor config {dict(config)!r} lacks {', '.join(missing)}")
        configs.append({key: config[key] for key in _CURSOR_KEYS})
    if not configs:
        return no_batches(extra=extra)
    ids = [config["batch_id"] for config in configs]
    if len(set(map(str, ids))) != len(ids):
        raise ValueError(f"batch ids must be unique, got {ids!r}")
    outcome = {
        "type": "create_batches",
        "worker_template_name": worker_template_name,
        "worker_count": len(configs),
        "cursor_configs": configs,
        "total_items": total_items,
    }
    return success({**dict(extra or {}), "batch_processing_outcome": outcome})


def no_batches(*, extra: Mapping[str, Any] | None = None) -> StepResult:
    """A batchable-step result that creates no real workers."""
    return success({**dict(extra or {}), "batch_processing_outcome": {"type": "no_batches"}})
