"""Encode and decode the queue payloads as JSON objects with snake_case keys (SPEC 1.4).

Decoders accept a parsed JSON object (or JSON text), apply the SPEC defaults, and
raise ContractError naming the offending field for anything malformed. Unknown keys
are ignored, so newer producers can add fields. Encoders return plain dicts ready for
``json.dumps`` / a jsonb parameter; optional fields that are unset are omitted.
"""

from __future__ import annotations

from typing import Any
from uuid import uuid4

from tasker_shared.contracts import fields as f
from tasker_shared.contracts.payloads import (
    DEFAULT_INITIATOR,
    DEFAULT_NAMESPACE,
    DEFAULT_REASON,
    DEFAULT_REQUESTER,
    DEFAULT_SOURCE_SYSTEM,
    DEFAULT_VERSION,
    PRIORITY_MAX,
    PRIORITY_MIN,
    BackoffHint,
    BackoffType,
    FinalizationRequest,
    OrchestrationMetadata,
    RequestOutcome,
    RequestPriority,
    StepExecutionError,
    StepExecutionMetadata,
    StepExecutionResult,
    StepMessage,
    StepResultStatus,
    TaskRequest,
    TaskRequestMessage,
    TaskRequestMetadata,
    TaskRequestOutcome,
)
from tasker_shared.contracts.queues import MAX_NAMESPACE_LENGTH, is_valid_namespace
from tasker_shared.errors import ContractError

__all__ = [
    "BackoffHint",
    "BackoffType",
    "ContractError",
    "FinalizationRequest",
    "OrchestrationMetadata",
    "RequestOutcome",
    "RequestPriority",
    "StepExecutionError",
    "StepExecutionMetadata",
    "StepExecutionResult",
    "StepMessage",
    "StepResultStatus",
    "TaskRequest",
    "TaskRequestMessage",
    "TaskRequestMetadata",
    "TaskRequestOutcome",
    "decode_finalization_request",
    "decode_step_execution_result",
    "decode_step_message",
    "decode_task_request",
    "decode_task_request_message",
    "decode_task_request_outcome",
    "encode_finalization_request",
    "encode_step_execution_result",
    "encode_step_message",
    "encode_task_request",
    "encode_task_request_message",
    "encode_task_request_outcome",
]

Json = dict[str, Any]

_U16_MAX = 65_535
_U32_MAX = 4_294_967_295
_I64_MAX = 9_223_372_036_854_775_807

# Accepted spellings (lower-cased) -> member. The Rust reference writes some of these
# in PascalCase ("ServerRequested", "Normal"); lower-casing folds those in.
_PRIORITIES: dict[str | int, RequestPriority] = {p.value: p for p in RequestPriority}
_PRIORITIES.update({p.level: p for p in RequestPriority})
_STATUSES: dict[str | int, StepResultStatus] = {s.value: s for s in StepResultStatus}
_BACKOFF_TYPES: dict[str | int, BackoffType] = {b.value: b for b in BackoffType}
_BACKOFF_TYPES.update({b.value.replace("_", ""): b for b in BackoffType})
_OUTCOMES: dict[str | int, RequestOutcome] = {o.value: o for o in RequestOutcome}


# -- StepMessage ---------------------------------------------------------------------


def decode_step_message(obj: Any) -> StepMessage:
    """``{task_uuid, step_uuid, correlation_id}``, all UUID strings, all required."""
    d = f.load_object(obj, "StepMessage")
    return StepMessage(
        task_uuid=f.req_uuid(d, "task_uuid", "StepMessage"),
        step_uuid=f.req_uuid(d, "step_uuid", "StepMessage"),
        correlation_id=f.req_uuid(d, "correlation_id", "StepMessage"),
    )


def encode_step_message(message: StepMessage) -> Json:
    return {
        "task_uuid": str(message.task_uuid),
        "step_uuid": str(message.step_uuid),
        "correlation_id": str(message.correlation_id),
    }


# -- TaskRequest / TaskRequestMessage --------------------------------------------------


def _task_request(d: Json, w: str) -> TaskRequest:
    namespace = f.str_or(d, "namespace", w, DEFAULT_NAMESPACE)
    if not is_valid_namespace(namespace):
        f.fail(
            w,
            "namespace",
            f"{namespace[:64]!r} must be 1 to {MAX_NAMESPACE_LENGTH} characters of [A-Za-z0-9_]",
        )
    correlation_id = f.opt_uuid(d, "correlation_id", w)
    return TaskRequest(
        name=f.req_str(d, "name", w),
        namespace=namespace,
        version=f.str_or(d, "version", w, DEFAULT_VERSION, nonempty=True),
        context=f.object_or_empty(d, "context", w),
        initiator=f.str_or(d, "initiator", w, DEFAULT_INITIATOR),
        source_system=f.str_or(d, "source_system", w, DEFAULT_SOURCE_SYSTEM),
        reason=f.str_or(d, "reason", w, DEFAULT_REASON),
        tags=f.strings_or_empty(d, "tags", w),
        requested_at=f.timestamp_or_now(d, "requested_at", w),
        options=f.opt_object(d, "options", w),
        priority=f.opt_int(d, "priority", w, PRIORITY_MIN, PRIORITY_MAX),
        correlation_id=uuid4() if correlation_id is None else correlation_id,
        parent_correlation_id=f.opt_uuid(d, "parent_correlation_id", w),
        idempotency_key=f.opt_str(d, "idempotency_key", w),
    )


def decode_task_request(obj: Any) -> TaskRequest:
    """A TaskRequest; `name` is required, everything else has a SPEC default."""
    return _task_request(f.load_object(obj, "TaskRequest"), "TaskRequest")


def encode_task_request(request: TaskRequest) -> Json:
    out: Json = {
        "name": request.name,
        "namespace": request.namespace,
        "version": request.version,
        "context": request.context,
        "initiator": request.initiator,
        "source_system": request.source_system,
        "reason": request.reason,
        "tags": list(request.tags),
        "requested_at": f.format_timestamp(request.requested_at),
    }
    if request.options is not None:
        out["options"] = request.options
    if request.priority is not None:
        out["priority"] = request.priority
    out["correlation_id"] = str(request.correlation_id)
    if request.parent_correlation_id is not None:
        out["parent_correlation_id"] = str(request.parent_correlation_id)
    if request.idempotency_key is not None:
        out["idempotency_key"] = request.idempotency_key
    return out


def _request_metadata(d: Json | None, w: str) -> TaskRequestMetadata:
    if d is None:
        return TaskRequestMetadata()
    return TaskRequestMetadata(
        requested_at=f.timestamp_or_now(d, "requested_at", w),
        requester=f.str_or(d, "requester", w, DEFAULT_REQUESTER),
        priority=f.enum_or(d, "priority", w, _PRIORITIES, RequestPriority.NORMAL),
        custom=f.object_or_empty(d, "custom", w),
    )


def decode_task_request_message(obj: Any) -> TaskRequestMessage:
    """``{request_id, task_request, metadata?}``; metadata defaults to normal priority, now."""
    w = "TaskRequestMessage"
    d = f.load_object(obj, w)
    return TaskRequestMessage(
        request_id=f.req_str(d, "request_id", w),
        task_request=_task_request(f.req_object(d, "task_request", w), f"{w}.task_request"),
        metadata=_request_metadata(f.opt_object(d, "metadata", w), f"{w}.metadata"),
    )


def encode_task_request_message(message: TaskRequestMessage) -> Json:
    meta = message.metadata
    return {
        "request_id": message.request_id,
        "task_request": encode_task_request(message.task_request),
        "metadata": {
            "requested_at": f.format_timestamp(meta.requested_at),
            "requester": meta.requester,
            "priority": meta.priority.value,
            "custom": meta.custom,
        },
    }


# -- StepExecutionResult ---------------------------------------------------------------


def _error(d: Json, w: str) -> StepExecutionError:
    return StepExecutionError(
        message=f.req_str(d, "message", w),
        error_type=f.opt_str(d, "error_type", w),
        backtrace=f.opt_strings(d, "backtrace", w),
        retryable=f.bool_or(d, "retryable", w, False),
        status_code=f.opt_int(d, "status_code", w, 0, _U16_MAX),
        context=f.opt_object(d, "context", w),
    )


def _metadata(d: Json | None, w: str) -> StepExecutionMetadata:
    if d is None:
        return StepExecutionMetadata()
    return StepExecutionMetadata(
        execution_time_ms=f.int_or(d, "execution_time_ms", w, 0, 0, _I64_MAX),
        handler_version=f.opt_str(d, "handler_version", w),
        retryable=f.bool_or(d, "retryable", w, False),
        completed_at=f.opt_timestamp(d, "completed_at", w),
        started_at=f.opt_timestamp(d, "started_at", w),
        worker_id=f.opt_str(d, "worker_id", w),
        worker_hostname=f.opt_str(d, "worker_hostname", w),
        custom=f.object_or_empty(d, "custom", w),
        error_code=f.opt_str(d, "error_code", w),
        error_type=f.opt_str(d, "error_type", w),
        context=f.object_or_empty(d, "context", w),
        checkpoint_yield=f.bool_or(d, "checkpoint_yield", w, False),
    )


def _orchestration_metadata(d: Json, w: str) -> OrchestrationMetadata:
    hint = f.opt_object(d, "backoff_hint", w)
    hw = f"{w}.backoff_hint"
    return OrchestrationMetadata(
        headers=f.string_map(d, "headers", w),
        error_context=f.opt_str(d, "error_context", w),
        backoff_hint=None
        if hint is None
        else BackoffHint(
            backoff_type=f.enum_or(hint, "backoff_type", hw, _BACKOFF_TYPES, None),
            delay_seconds=f.req_int(hint, "delay_seconds", hw, 0, _U32_MAX),
            context=f.opt_object(hint, "context", hw),
        ),
        custom=f.object_or_empty(d, "custom", w),
    )


def decode_step_execution_result(obj: Any) -> StepExecutionResult:
    """A handler result; `step_uuid` and `success` are required.

    `status` defaults to "completed" or "failed" from `success`; `result` defaults to {}.
    """
    w = "StepExecutionResult"
    d = f.load_object(obj, w)
    success = f.req_bool(d, "success", w)
    default_status = StepResultStatus.COMPLETED if success else StepResultStatus.FAILED
    error = f.opt_object(d, "error", w)
    orchestration = f.opt_object(d, "orchestration_metadata", w)
    return StepExecutionResult(
        step_uuid=f.req_uuid(d, "step_uuid", w),
        success=success,
        status=f.enum_or(d, "status", w, _STATUSES, default_status),
        result=f.object_or_empty(d, "result", w),
        error=None if error is None else _error(error, f"{w}.error"),
        metadata=_metadata(f.opt_object(d, "metadata", w), f"{w}.metadata"),
        orchestration_metadata=None
        if orchestration is None
        else _orchestration_metadata(orchestration, f"{w}.orchestration_metadata"),
    )


def _encode_error(error: StepExecutionError) -> Json:
    out: Json = {"message": error.message}
    if error.error_type is not None:
        out["error_type"] = error.error_type
    if error.backtrace is not None:
        out["backtrace"] = list(error.backtrace)
    out["retryable"] = error.retryable
    if error.status_code is not None:
        out["status_code"] = error.status_code
    if error.context is not None:
        out["context"] = error.context
    return out


def _encode_metadata(meta: StepExecutionMetadata) -> Json:
    out: Json = {"execution_time_ms": meta.execution_time_ms}
    if meta.handler_version is not None:
        out["handler_version"] = meta.handler_version
    out["retryable"] = meta.retryable
    if meta.completed_at is not None:
        out["completed_at"] = f.format_timestamp(meta.completed_at)
    if meta.started_at is not None:
        out["started_at"] = f.format_timestamp(meta.started_at)
    if meta.worker_id is not None:
        out["worker_id"] = meta.worker_id
    if meta.worker_hostname is not None:
        out["worker_hostname"] = meta.worker_hostname
    out["custom"] = meta.custom
    if meta.error_code is not None:
        out["error_code"] = meta.error_code
    if meta.error_type is not None:
        out["error_type"] = meta.error_type
    out["context"] = meta.context
    if meta.checkpoint_yield:
        out["checkpoint_yield"] = True
    return out


def _encode_orchestration_metadata(meta: OrchestrationMetadata) -> Json:
    out: Json = {"headers": meta.headers}
    if meta.error_context is not None:
        out["error_context"] = meta.error_context
    hint = meta.backoff_hint
    if hint is not None:
        encoded: Json = {
            "backoff_type": hint.backoff_type.value,
            "delay_seconds": hint.delay_seconds,
        }
        if hint.context is not None:
            encoded["context"] = hint.context
        out["backoff_hint"] = encoded
    out["custom"] = meta.custom
    return out


def encode_step_execution_result(result: StepExecutionResult) -> Json:
    out: Json = {
        "step_uuid": str(result.step_uuid),
        "success": result.success,
        "result": result.result,
        "status": result.status.value,
    }
    if result.error is not None:
        out["error"] = _encode_error(result.error)
    out["metadata"] = _encode_metadata(result.metadata)
    if result.orchestration_metadata is not None:
        out["orchestration_metadata"] = _encode_orchestration_metadata(
            result.orchestration_metadata
        )
    return out


# -- FinalizationRequest / TaskRequestOutcome ------------------------------------------


def decode_finalization_request(obj: Any) -> FinalizationRequest:
    """``{task_uuid, reason?}``."""
    d = f.load_object(obj, "FinalizationRequest")
    return FinalizationRequest(
        task_uuid=f.req_uuid(d, "task_uuid", "FinalizationRequest"),
        reason=f.opt_str(d, "reason", "FinalizationRequest"),
    )


def encode_finalization_request(request: FinalizationRequest) -> Json:
    out: Json = {"task_uuid": str(request.task_uuid)}
    if request.reason is not None:
        out["reason"] = request.reason
    return out


def decode_task_request_outcome(obj: Any) -> TaskRequestOutcome:
    """``{request_id, outcome, task_uuid?, reason?}``; created/duplicate need task_uuid."""
    w = "TaskRequestOutcome"
    d = f.load_object(obj, w)
    outcome = TaskRequestOutcome(
        request_id=f.req_str(d, "request_id", w),
        outcome=f.enum_or(d, "outcome", w, _OUTCOMES, None),
        task_uuid=f.opt_uuid(d, "task_uuid", w),
        reason=f.opt_str(d, "reason", w),
    )
    if outcome.task_uuid is None and outcome.outcome is not RequestOutcome.INVALID:
        f.fail(w, "task_uuid", f"is required when outcome is {outcome.outcome.value!r}")
    return outcome


def encode_task_request_outcome(outcome: TaskRequestOutcome) -> Json:
    out: Json = {"request_id": outcome.request_id, "outcome": outcome.outcome.value}
    if outcome.task_uuid is not None:
        out["task_uuid"] = str(outcome.task_uuid)
    if outcome.reason is not None:
        out["reason"] = outcome.reason
    return out
