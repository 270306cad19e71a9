"""Encode and decode the queue payloads as JSON objects with snake_case keys (SPEC 1.4).

The codecs are built from the contract (`codec`: proto/tasker/v1/messages.proto through
`queue_schema`, onto the value objects of `payloads`); this module adds what proto3 cannot
say, as `Rule`s. Decoders accept a parsed JSON object (or JSON text), apply the SPEC
defaults (the value objects' defaults), and raise ContractError naming the offending field
for anything malformed. Unknown keys are ignored, so newer producers can add fields. Enum
values are the lower-case suffix of the proto value name ("completed"); the Rust
reference's PascalCase spellings ("ServerRequested") are accepted too, and a request
priority may be given as its proto number (1..4). Encoders return plain dicts ready for
``json.dumps`` / a jsonb parameter; optional fields that are unset are omitted.
"""

from __future__ import annotations

from tasker_shared.contracts import fields as f
from tasker_shared.contracts.codec import Codec, Contract, Got, Rule
from tasker_shared.contracts.payloads import (
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

_U16_MAX = 65_535
_I64_MAX = 9_223_372_036_854_775_807


def _check_namespace(namespace: str, key: str, where: str) -> None:
    if not is_valid_namespace(namespace):
        f.fail(where, key, f"{namespace[:64]!r} must be 1 to {MAX_NAMESPACE_LENGTH}"
                           " characters of [A-Za-z0-9_]")


def _status_from_success(got: Got) -> StepResultStatus:
    return StepResultStatus.COMPLETED if got.get("success") else StepResultStatus.FAILED


def _check_outcome(outcome: TaskRequestOutcome, where: str) -> None:
    if outcome.task_uuid is None and outcome.outcome is not RequestOutcome.INVALID:
        f.fail(where, "task_uuid", f"is required when outcome is {outcome.outcome.value!r}")


CONTRACT = Contract(
    rules={
        "TaskRequest": {
            "namespace": Rule(check=_check_namespace),
            "version": Rule(nonempty=True),
            "priority": Rule(low=PRIORITY_MIN, high=PRIORITY_MAX),
        },
        # Producers get a fresh request_id; a message on the queue must carry its own.
        "TaskRequestMessage": {"request_id": Rule(required=True)},
        "TaskRequestMetadata": {"priority": Rule(numbers=True)},
        "StepExecutionResult": {"status": Rule(default=_status_from_success)},
        "StepExecutionError": {"status_code": Rule(low=0, high=_U16_MAX)},
        "StepExecutionMetadata": {
            "execution_time_ms": Rule(high=_I64_MAX),
            "checkpoint_yield": Rule(omit_false=True),
        },
    },
    checks={"TaskRequestOutcome": _check_outcome},
)

_STEP_MESSAGE = Codec(StepMessage, CONTRACT)
_TASK_REQUEST = Codec(TaskRequest, CONTRACT)
_TASK_REQUEST_MESSAGE = Codec(TaskRequestMessage, CONTRACT)
_STEP_EXECUTION_RESULT = Codec(StepExecutionResult, CONTRACT)
_FINALIZATION_REQUEST = Codec(FinalizationRequest, CONTRACT)
_TASK_REQUEST_OUTCOME = Codec(TaskRequestOutcome, CONTRACT)

# The compiled functions themselves (no call in between: result processing decodes every
# step result). Decoders take a JSON object or JSON text.

# {task_uuid, step_uuid, correlation_id}: UUID strings, all required.
decode_step_message = _STEP_MESSAGE.decode
encode_step_message = _STEP_MESSAGE.encode
# `name` is required, everything else has a SPEC default.
decode_task_request = _TASK_REQUEST.decode
encode_task_request = _TASK_REQUEST.encode
# {request_id, task_request, metadata?}; metadata defaults to normal priority, now.
decode_task_request_message = _TASK_REQUEST_MESSAGE.decode
encode_task_request_message = _TASK_REQUEST_MESSAGE.encode
# A handler result; `step_uuid` and `success` are required; `status` defaults to
# "completed" or "failed" from `success`; `result` defaults to {}.
decode_step_execution_result = _STEP_EXECUTION_RESULT.decode
encode_step_execution_result = _STEP_EXECUTION_RESULT.encode
# {task_uuid, reason?}.
decode_finalization_request = _FINALIZATION_REQUEST.decode
encode_finalization_request = _FINALIZATION_REQUEST.encode
# {request_id, outcome, task_uuid?, reason?}; created and duplicate need task_uuid.
decode_task_request_outcome = _TASK_REQUEST_OUTCOME.decode
encode_task_request_outcome = _TASK_REQUEST_OUTCOME.encode
