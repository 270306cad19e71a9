"""Bounds on what a handler hands back: a result nested too deeply, too large or not
representable as JSON becomes a non-retryable failure of its step that names the limit."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from typing import Any

from tasker_shared.domain.limits import DEFAULT_MAX_DEPTH, JsonLimitError, check_json
from tasker_worker.runtime.claims import StepOutcome
from tasker_worker.sdk.results import failure

# The execution-result envelope around the handler's values (payload > metadata > custom).
ENVELOPE_DEPTH = 3


def _handler_values(payload: dict[str, Any]) -> list[tuple[str, Any]]:
    """The parts of a result payload whose content the handler chose."""
    metadata = payload.get("metadata") or {}
    error = payload.get("error") or {}
    parts = [("result", payload.get("result")), ("result metadata", metadata.get("custom")),
             ("error context", error.get("context"))]
    return [(what, value) for what, value in parts if value is not None]


def _violation(payload: dict[str, Any], max_bytes: int) -> tuple[str, str] | None:
    """(error_code, message) when the payload breaks a bound, else None."""
    try:
        for what, value in _handler_values(payload):
            check_json(value, what=f"step {what}", max_bytes=None)
        json.dumps(payload, allow_nan=False)  # what PostgreSQL's jsonb accepts
        check_json(payload, what="step result", max_depth=DEFAULT_MAX_DEPTH + ENVELOPE_DEPTH,
                   max_bytes=max_bytes)
    except JsonLimitError as exc:
        return "result_too_large", str(exc)
    except (TypeError, ValueError) as exc:
        return "result_not_json", f"step result is not representable as JSON: {exc}"
    return None


def bounded(outcome: StepOutcome, *, max_bytes: int) -> StepOutcome:
    """`outcome`, or a non-retryable failure in its place when its payload breaks a bound
    (nesting deeper than `limits.DEFAULT_MAX_DEPTH`, more than `max_bytes` of JSON, values
    JSON cannot hold). The failure keeps the run's timing and names the limit."""
    found = _violation(outcome.payload, max_bytes)
    if found is None:
        return outcome
    code, message = found
    now = datetime.now(UTC)
    payload = failure(message, error_type="validation_error", error_code=code,
                      retryable=False).to_execution_result(
        step_uuid=str(outcome.step.step_uuid), execution_time_ms=0, started_at=now,
        completed_at=now, worker_id=None)
    meta = outcome.payload.get("metadata") or {}
    for key in ("execution_time_ms", "started_at", "completed_at", "worker_id"):
        if isinstance(meta.get(key), (int, str)):  # the envelope's own scalars: safe to keep
            payload["metadata"][key] = meta[key]
    return dataclasses.replace(outcome, success=False, payload=payload, error=message)
