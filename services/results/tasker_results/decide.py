"""The pure decision on a step result (SPEC §2.3, §6.2): complete, fail, or wait for a
retry after a computed backoff."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from tasker_shared.contracts.messages import decode_step_execution_result
from tasker_shared.domain.backoff import compute_backoff, retry_after_from_headers
from tasker_shared.domain.states import StepEvent, StepState
from tasker_shared.errors import ContractError
from tasker_shared.runtime.settings import BackoffSettings

_SUCCESS_WORDS = {"success", "complete", "completed"}


@dataclass(frozen=True, kw_only=True, slots=True)
class Decision:
    event: StepEvent
    backoff_seconds: float | None = None
    reason: str | None = None
    backoff_kind: str | None = None


def _error_message(results: Any) -> str:
    if isinstance(results, dict):
        error = results.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])
    return "step failed without an error message"


def decide(
    *,
    state: StepState,
    results: Any,
    attempts: int,
    max_attempts: int,
    backoff: BackoffSettings,
    rng: random.Random | None = None,
) -> Decision:
    """What orchestration does with a result the worker recorded."""
    try:
        parsed = decode_step_execution_result(results)
    except ContractError:
        parsed = None
    if state is StepState.ENQUEUED_FOR_ORCHESTRATION:
        if parsed is not None:
            ok = parsed.success
        else:
            status = results.get("status") if isinstance(results, dict) else None
            ok = isinstance(status, str) and status.lower() in _SUCCESS_WORDS
        if ok:
            return Decision(event=StepEvent.COMPLETE)
        return Decision(event=StepEvent.FAIL, reason=f"Step failed: {_error_message(results)}")
    message = _error_message(results)
    retryable = bool(parsed.metadata.retryable) if parsed is not None else False
    if retryable and attempts < max_attempts:
        retry_after = None
        hint_seconds = None
        if parsed is not None and parsed.orchestration_metadata is not None:
            retry_after = retry_after_from_headers(parsed.orchestration_metadata.headers)
            hint = parsed.orchestration_metadata.backoff_hint
            if hint is not None:
                hint_seconds = float(hint.delay_seconds)
        if retry_after is None and hint_seconds is not None:
            retry_after = str(int(hint_seconds))
        computed = compute_backoff(
            attempts=attempts,
            base_seconds=backoff.base_seconds,
            multiplier=backoff.multiplier,
            max_seconds=backoff.max_seconds,
            jitter_enabled=backoff.jitter_enabled,
            jitter_max_percentage=backoff.jitter_max_percentage,
            retry_after=retry_after,
            rng=rng,
        )
        return Decision(event=StepEvent.WAIT_FOR_RETRY, backoff_seconds=computed.delay_seconds,
                        reason=f"{message} - retryable", backoff_kind=computed.kind)
    why = "attempts exhausted" if retryable else "not retryable"
    return Decision(event=StepEvent.FAIL, reason=f"{message} ({why})")
