"""Queue payload encode/decode: round trips, SPEC defaults, and every rejection path."""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from uuid import UUID, uuid4

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tasker_shared.contracts.generated.tasker.v1 as pb
from tasker_shared.contracts import fields, payloads
from tasker_shared.contracts import messages as m
from tasker_shared.errors import ContractError

T1, T2, T3 = (str(uuid4()) for _ in range(3))
WHEN = "2024-05-01T10:00:00.123456Z"

STEP_MESSAGE = {"task_uuid": T1, "step_uuid": T2, "correlation_id": T3}

TASK_REQUEST = {
    "name": "refund_order",
    "namespace": "payments",
    "version": "1.2.0",
    "context": {"order_id": 7, "amount": 12.5},
    "initiator": "alice",
    "source_system": "shop",
    "reason": "customer asked",
    "tags": ["refund", "vip"],
    "requested_at": WHEN,
    "options": {"dry_run": True},
    "priority": -100,
    "correlation_id": T1,
    "parent_correlation_id": T2,
    "idempotency_key": "order-7",
}

TASK_REQUEST_MESSAGE = {
    "request_id": "req-1",
    "task_request": TASK_REQUEST,
    "metadata": {
        "requested_at": WHEN,
        "requester": "gateway",
        "priority": "urgent",
        "custom": {"trace": "abc"},
    },
}

SUCCESS_RESULT = {
    "step_uuid": T2,
    "success": True,
    "result": {"refund_id": "r-1"},
    "status": "completed",
    "metadata": {"execution_time_ms": 3, "retryable": False, "custom": {}, "context": {}},
}

FAILURE_RESULT = {
    "step_uuid": T2,
    "success": False,
    "result": {},
    "status": "error",
    "error": {
        "message": "upstream 503",
        "error_type": "retryable_error",
        "backtrace": ["line 1", "line 2"],
        "retryable": True,
        "status_code": 503,
        "context": {"url": "https://example.invalid"},
    },
    "metadata": {
        "execution_time_ms": 1500,
        "handler_version": "1.0.0",
        "retryable": True,
        "completed_at": WHEN,
        "started_at": "2024-05-01T09:59:58Z",
        "worker_id": "worker-1",
        "worker_hostname": "host-a",
        "custom": {"k": "v"},
        "error_code": "E503",
        "error_type": "retryable_error",
        "context": {"attempt": 2},
        "checkpoint_yield": True,
    },
    "orchestration_metadata": {
        "headers": {"Retry-After": "5"},
        "error_context": "calling payments API",
        "backoff_hint": {
            "backoff_type": "server_requested",
            "delay_seconds": 5,
            "context": {"source": "header"},
        },
        "custom": {"x": 1},
    },
}

FINALIZATION = {"task_uuid": T1, "reason": "step_result"}
OUTCOME = {"request_id": "req-1", "outcome": "created", "task_uuid": T1, "reason": "new"}

Decoder = Callable[[Any], Any]
Encoder = Callable[[Any], dict[str, Any]]

CODECS: list[tuple[str, Decoder, Encoder, dict[str, Any]]] = [
    ("StepMessage", m.decode_step_message, m.encode_step_message, STEP_MESSAGE),
    ("TaskRequest", m.decode_task_request, m.encode_task_request, TASK_REQUEST),
    (
        "TaskRequestMessage",
        m.decode_task_request_message,
        m.encode_task_request_message,
        TASK_REQUEST_MESSAGE,
    ),
    (
        "StepExecutionResult",
        m.decode_step_execution_result,
        m.encode_step_execution_result,
        FAILURE_RESULT,
    ),
    (
        "FinalizationRequest",
        m.decode_finalization_request,
        m.encode_finalization_request,
        FINALIZATION,
    ),
    ("TaskRequestOutcome", m.decode_task_request_outcome, m.encode_task_request_outcome, OUTCOME),
]
CODEC_IDS = [name for name, *_ in CODECS]


# -- round trips -----------------------------------------------------------------------


@pytest.mark.parametrize(("name", "decode", "encode", "payload"), CODECS, ids=CODEC_IDS)
def test_canonical_payload_round_trips_exactly(
    name: str, decode: Decoder, encode: Encoder, payload: dict[str, Any]
) -> None:
    decoded = decode(payload)
    assert type(decoded).__name__ == name
    assert encode(decoded) == payload
    assert decode(encode(decoded)) == decoded


@pytest.mark.parametrize(("name", "decode", "encode", "payload"), CODECS, ids=CODEC_IDS)
def test_json_text_and_bytes_are_accepted(
    name: str, decode: Decoder, encode: Encoder, payload: dict[str, Any]
) -> None:
    text = json.dumps(payload)
    assert decode(text) == decode(payload) == decode(text.encode())


def test_success_result_round_trips() -> None:
    decoded = m.decode_step_execution_result(SUCCESS_RESULT)
    assert decoded.error is None
    assert decoded.orchestration_metadata is None
    encoded = m.encode_step_execution_result(decoded)
    assert encoded == SUCCESS_RESULT
    assert "error" not in encoded
    assert "orchestration_metadata" not in encoded


def test_optional_fields_are_omitted_when_unset() -> None:
    result = m.StepExecutionResult(
        step_uuid=UUID(T2),
        success=False,
        status=m.StepResultStatus.FAILED,
        error=m.StepExecutionError(message="nope"),
        orchestration_metadata=m.OrchestrationMetadata(
            backoff_hint=m.BackoffHint(backoff_type=m.BackoffType.RATE_LIMIT, delay_seconds=2)
        ),
    )
    encoded = m.encode_step_execution_result(result)
    assert encoded["error"] == {"message": "nope", "retryable": False}
    assert encoded["metadata"] == {
        "execution_time_ms": 0,
        "retryable": False,
        "custom": {},
        "context": {},
    }
    assert encoded["orchestration_metadata"] == {
        "headers": {},
        "backoff_hint": {"backoff_type": "rate_limit", "delay_seconds": 2},
        "custom": {},
    }
    assert m.decode_step_execution_result(encoded) == result
    assert m.encode_finalization_request(m.FinalizationRequest(task_uuid=UUID(T1))) == {
        "task_uuid": T1
    }
    invalid = m.TaskRequestOutcome(request_id="r", outcome=m.RequestOutcome.INVALID)
    assert m.encode_task_request_outcome(invalid) == {"request_id": "r", "outcome": "invalid"}
    assert m.decode_task_request_outcome(m.encode_task_request_outcome(invalid)) == invalid


def test_producer_side_construction_round_trips() -> None:
    message = m.TaskRequestMessage(task_request=m.TaskRequest(name="t"))
    UUID(message.request_id)
    encoded = m.encode_task_request_message(message)
    assert json.loads(json.dumps(encoded)) == encoded
    assert m.decode_task_request_message(encoded) == message


# -- defaults --------------------------------------------------------------------------


def test_task_request_defaults() -> None:
    before = datetime.now(UTC)
    request = m.decode_task_request({"name": "t"})
    assert request.namespace == "default"
    assert request.version == "0.1.0"
    assert request.context == {}
    assert request.initiator == "system"
    assert request.source_system == "tasker-core"
    assert request.reason == "Task requested"
    assert request.tags == ()
    assert before <= request.requested_at <= datetime.now(UTC)
    assert request.options is None
    assert request.priority is None
    assert isinstance(request.correlation_id, UUID)
    assert request.parent_correlation_id is None
    assert request.idempotency_key is None
    assert m.decode_task_request({"name": "t"}).correlation_id != request.correlation_id


def test_nulls_count_as_absent() -> None:
    request = m.decode_task_request(
        {"name": "t", "namespace": None, "context": None, "tags": None, "priority": None}
    )
    assert (request.namespace, request.context, request.tags, request.priority) == (
        "default",
        {},
        (),
        None,
    )


def test_task_request_message_metadata_defaults() -> None:
    message = m.decode_task_request_message({"request_id": "r", "task_request": {"name": "t"}})
    assert message.metadata.priority is m.RequestPriority.NORMAL
    assert message.metadata.requester == "system"
    assert message.metadata.custom == {}
    empty = m.decode_task_request_message(
        {"request_id": "r", "task_request": {"name": "t"}, "metadata": {}}
    )
    assert empty.metadata.priority is m.RequestPriority.NORMAL


@pytest.mark.parametrize(
    ("spelling", "expected"),
    [
        ("low", m.RequestPriority.LOW),
        ("Normal", m.RequestPriority.NORMAL),
        ("HIGH", m.RequestPriority.HIGH),
        ("Urgent", m.RequestPriority.URGENT),
        (1, m.RequestPriority.LOW),
        (4, m.RequestPriority.URGENT),
    ],
)
def test_request_priority_spellings(spelling: object, expected: m.RequestPriority) -> None:
    payload = {"request_id": "r", "task_request": {"name": "t"}, "metadata": {"priority": spelling}}
    assert m.decode_task_request_message(payload).metadata.priority is expected
    assert [p.level for p in m.RequestPriority] == [1, 2, 3, 4]


@pytest.mark.parametrize(
    ("success", "expected"),
    [(True, m.StepResultStatus.COMPLETED), (False, m.StepResultStatus.FAILED)],
)
def test_result_status_defaults_from_success(success: bool, expected: m.StepResultStatus) -> None:
    result = m.decode_step_execution_result({"step_uuid": T2, "success": success})
    assert result.status is expected
    assert result.result == {}
    assert result.metadata == m.StepExecutionMetadata()


@pytest.mark.parametrize(
    ("spelling", "expected"),
    [
        ("server_requested", m.BackoffType.SERVER_REQUESTED),
        ("ServerRequested", m.BackoffType.SERVER_REQUESTED),
        ("RateLimit", m.BackoffType.RATE_LIMIT),
        ("ServiceUnavailable", m.BackoffType.SERVICE_UNAVAILABLE),
        ("custom", m.BackoffType.CUSTOM),
    ],
)
def test_backoff_type_spellings(spelling: str, expected: m.BackoffType) -> None:
    payload = {
        "step_uuid": T2,
        "success": False,
        "orchestration_metadata": {"backoff_hint": {"backoff_type": spelling, "delay_seconds": 1}},
    }
    meta = m.decode_step_execution_result(payload).orchestration_metadata
    assert meta is not None
    assert meta.backoff_hint is not None
    assert meta.backoff_hint.backoff_type is expected


def test_unknown_keys_are_ignored() -> None:
    assert m.decode_step_message({**STEP_MESSAGE, "extra": [1, 2]}) == m.decode_step_message(
        STEP_MESSAGE
    )


# -- timestamps ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-05-01T10:00:00Z", datetime(2024, 5, 1, 10, tzinfo=UTC)),
        ("2024-05-01T12:00:00+02:00", datetime(2024, 5, 1, 10, tzinfo=UTC)),
        ("2024-05-01T10:00:00", datetime(2024, 5, 1, 10, tzinfo=UTC)),
        ("2024-05-01T10:00:00.123456789Z", datetime(2024, 5, 1, 10, 0, 0, 123456, tzinfo=UTC)),
    ],
)
def test_timestamps_are_normalised_to_utc(text: str, expected: datetime) -> None:
    request = m.decode_task_request({"name": "t", "requested_at": text})
    assert request.requested_at == expected
    assert request.requested_at.tzinfo is UTC


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (datetime(2024, 5, 1, 10), "2024-05-01T10:00:00Z"),
        (
            datetime(2024, 5, 1, 12, 0, 0, 5, tzinfo=timezone(timedelta(hours=2))),
            "2024-05-01T10:00:00.000005Z",
        ),
        (datetime(2024, 5, 1, 10, tzinfo=UTC), "2024-05-01T10:00:00Z"),
    ],
)
def test_format_timestamp(value: datetime, expected: str) -> None:
    assert fields.format_timestamp(value) == expected


# -- rejections ------------------------------------------------------------------------


SM, TR, TRM, SER, FR, TRO = CODEC_IDS
CODEC_BY_NAME = {name: (decode, payload) for name, decode, _, payload in CODECS}
DROP = object()


def _mutate(payload: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    out = copy.deepcopy(payload)
    *parents, last = path.split(".")
    node = out
    for part in parents:
        node = node[part]
    if value is DROP:
        del node[last]
    else:
        node[last] = value
    return out


# (payload, dotted path of the field, replacement value or DROP, expected problem)
MUTATIONS: list[tuple[str, str, Any, str]] = [
    # UUIDs
    (SM, "task_uuid", DROP, "is required"),
    (SM, "step_uuid", "nope", "not a valid UUID"),
    (SM, "correlation_id", 12, "expected a UUID string, got number"),
    (SM, "task_uuid", {1}, "got set"),
    (SM, "task_uuid", (1,), "got array"),
    (SM, "task_uuid", True, "got boolean"),
    (TR, "correlation_id", "x", "not a valid UUID"),
    (TR, "parent_correlation_id", [], "got array"),
    # strings
    (TR, "name", DROP, "is required"),
    (TR, "name", "", "must not be empty"),
    (TR, "name", 5, "expected a string, got number"),
    (TR, "version", "", "must not be empty"),
    (TR, "initiator", {}, "got object"),
    (TR, "idempotency_key", 1, "got number"),
    # namespace
    (TR, "namespace", "bad-ns", "[A-Za-z0-9_]"),
    (TR, "namespace", "n" * 30, "1 to 29"),
    (TR, "namespace", "", "1 to 29"),
    # objects
    (TR, "context", [1], "expected an object, got array"),
    (TR, "options", "x", "got string"),
    # integers
    (TR, "priority", 101, "101 is outside [-100, 100]"),
    (TR, "priority", -101, "outside"),
    (TR, "priority", True, "expected an integer, got boolean"),
    (TR, "priority", 1.0, "got number"),
    (TR, "priority", "1", "got string"),
    # string lists
    (TR, "tags", "vip", "expected an array of strings, got string"),
    # timestamps
    (TR, "requested_at", "yesterday", "is not an RFC 3339 timestamp"),
    (TR, "requested_at", 1700000000, "got number"),
    (TR, "requested_at", "0001-01-01T00:00:00+01:00", "out of range"),
    # TaskRequestMessage
    (TRM, "request_id", DROP, "is required"),
    (TRM, "task_request", DROP, "is required"),
    (TRM, "task_request", "t", "got string"),
    (TRM, "task_request.name", None, "is required"),
    (TRM, "metadata", [], "got array"),
    (TRM, "metadata.priority", "asap", "unknown value 'asap'"),
    (TRM, "metadata.priority", 9, "unknown value"),
    (TRM, "metadata.priority", True, "expected a string, got boolean"),
    (TRM, "metadata.priority", [1], "got array"),
    (TRM, "metadata.requested_at", "x", "RFC 3339"),
    (TRM, "metadata.custom", 1, "got number"),
    # StepExecutionResult
    (SER, "success", DROP, "is required"),
    (SER, "success", "false", "expected a boolean, got string"),
    (SER, "step_uuid", DROP, "is required"),
    (SER, "status", "success", "unknown value 'success'"),
    (SER, "result", [1], "got array"),
    (SER, "error", "boom", "got string"),
    (SER, "error.message", None, "is required"),
    (SER, "error.retryable", 1, "expected a boolean"),
    (SER, "error.status_code", 70000, "outside [0, 65535]"),
    (SER, "error.context", [], "got array"),
    (SER, "metadata", 1, "got number"),
    (SER, "metadata.retryable", "no", "got string"),
    (SER, "metadata.execution_time_ms", -1, "outside"),
    (SER, "metadata.execution_time_ms", 2.5, "expected an integer"),
    (SER, "metadata.completed_at", "noon", "RFC 3339"),
    (SER, "metadata.worker_id", 7, "got number"),
    (SER, "metadata.checkpoint_yield", "y", "boolean"),
    (SER, "orchestration_metadata", [], "got array"),
    (SER, "orchestration_metadata.headers", [], "got array"),
    (SER, "orchestration_metadata.backoff_hint", 5, "got number"),
    (SER, "orchestration_metadata.backoff_hint.backoff_type", None, "is required"),
    (SER, "orchestration_metadata.backoff_hint.backoff_type", "later", "unknown value"),
    (SER, "orchestration_metadata.backoff_hint.delay_seconds", None, "is required"),
    (SER, "orchestration_metadata.backoff_hint.delay_seconds", -5, "outside"),
    (SER, "orchestration_metadata.error_context", {}, "got object"),
    # FinalizationRequest / TaskRequestOutcome
    (FR, "task_uuid", DROP, "is required"),
    (FR, "reason", 1, "got number"),
    (TRO, "outcome", DROP, "is required"),
    (TRO, "outcome", "maybe", "unknown value"),
    (TRO, "task_uuid", DROP, "is required when outcome is 'created'"),
    (TRO, "request_id", "", "must not be empty"),
]


def _check_rejection(decode: Decoder, payload: Any, field: str, problem: str) -> None:
    with pytest.raises(ContractError) as info:
        decode(payload)
    assert str(info.value).startswith(f"{field}: "), str(info.value)
    assert problem in str(info.value), str(info.value)
    assert info.value.details == {"field": field}


@pytest.mark.parametrize(("name", "path", "value", "problem"), MUTATIONS)
def test_rejections_name_the_field(name: str, path: str, value: Any, problem: str) -> None:
    decode, payload = CODEC_BY_NAME[name]
    _check_rejection(decode, _mutate(payload, path, value), f"{name}.{path}", problem)


@pytest.mark.parametrize(
    ("decode", "payload", "field", "problem"),
    [
        (m.decode_step_message, [], SM, "expected an object, got array"),
        (m.decode_step_message, None, SM, "got null"),
        (m.decode_step_message, 3, SM, "got number"),
        (m.decode_step_message, "{not json", SM, "not valid JSON"),
        (m.decode_step_message, b"\xff\xfe", SM, "not valid JSON"),
        (m.decode_step_message, "[1]", SM, "got array"),
        (m.decode_finalization_request, object(), FR, "got object"),
        (m.decode_task_request, {"name": "t", "tags": ["ok", 3]}, f"{TR}.tags[1]", "got number"),
        (
            m.decode_step_execution_result,
            _mutate(FAILURE_RESULT, "orchestration_metadata.headers.Retry-After", 5),
            f"{SER}.orchestration_metadata.headers.Retry-After",
            "expected a string, got number",
        ),
        (
            m.decode_step_execution_result,
            _mutate(FAILURE_RESULT, "error.backtrace", ["ok", None]),
            f"{SER}.error.backtrace[1]",
            "expected a string, got null",
        ),
        (
            m.decode_task_request_outcome,
            {"request_id": "r", "outcome": "Duplicate"},
            f"{TRO}.task_uuid",
            "'duplicate'",
        ),
    ],
)
def test_other_rejections(decode: Decoder, payload: Any, field: str, problem: str) -> None:
    _check_rejection(decode, payload, field, problem)


# -- the JSON keys are the proto field names -------------------------------------------

PAIRS: list[tuple[type[Any], type[Any]]] = [
    (m.StepMessage, pb.StepMessage),
    (m.TaskRequest, pb.TaskRequest),
    (m.TaskRequestMetadata, pb.TaskRequestMetadata),
    (m.TaskRequestMessage, pb.TaskRequestMessage),
    (m.StepExecutionError, pb.StepExecutionError),
    (m.StepExecutionMetadata, pb.StepExecutionMetadata),
    (m.BackoffHint, pb.BackoffHint),
    (m.OrchestrationMetadata, pb.OrchestrationMetadata),
    (m.StepExecutionResult, pb.StepExecutionResult),
    (m.FinalizationRequest, pb.FinalizationRequest),
    (m.TaskRequestOutcome, pb.TaskRequestOutcome),
]


def _proto_fields(cls: type[Any]) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


@pytest.mark.parametrize(("ours", "proto"), PAIRS, ids=[p[0].__name__ for p in PAIRS])
def test_value_objects_mirror_proto_messages(ours: type[Any], proto: type[Any]) -> None:
    assert ours.__name__ == proto.__name__
    assert sorted(f.name for f in dataclasses.fields(ours)) == sorted(_proto_fields(proto))


NESTED = {
    "task_request": pb.TaskRequest,
    "metadata": None,  # depends on the parent
    "error": pb.StepExecutionError,
    "orchestration_metadata": pb.OrchestrationMetadata,
    "backoff_hint": pb.BackoffHint,
}
METADATA_OF = {
    pb.TaskRequestMessage: pb.TaskRequestMetadata,
    pb.StepExecutionResult: pb.StepExecutionMetadata,
}


def _assert_keys_match(encoded: dict[str, Any], proto: type[Any]) -> None:
    # Fully populated payloads use every field, in proto declaration order.
    assert list(encoded) == _proto_fields(proto)
    for key, value in encoded.items():
        child = METADATA_OF.get(proto) if key == "metadata" else NESTED.get(key)
        if child is not None:
            _assert_keys_match(value, child)


@pytest.mark.parametrize(("name", "decode", "encode", "payload"), CODECS, ids=CODEC_IDS)
def test_json_keys_are_the_proto_field_names(
    name: str, decode: Decoder, encode: Encoder, payload: dict[str, Any]
) -> None:
    _assert_keys_match(encode(decode(payload)), getattr(pb, name))


@pytest.mark.parametrize(
    ("ours", "proto"),
    [
        (m.RequestPriority, pb.RequestPriority),
        (m.StepResultStatus, pb.StepResultStatus),
        (m.BackoffType, pb.BackoffType),
        (m.RequestOutcome, pb.RequestOutcome),
    ],
)
def test_json_enum_values_are_the_proto_value_names(ours: Any, proto: Any) -> None:
    proto_members = [p for p in proto if p.name != "UNSPECIFIED"]
    assert [o.name for o in ours] == [p.name for p in proto_members]
    assert [o.value for o in ours] == [p.name.lower() for p in proto_members]


def test_priority_levels_are_the_proto_numbers() -> None:
    for priority in m.RequestPriority:
        assert priority.level == pb.RequestPriority[priority.name].value


def test_payload_defaults_match_spec() -> None:
    assert payloads.DEFAULT_NAMESPACE == "default"
    assert payloads.DEFAULT_VERSION == "0.1.0"
    assert (payloads.PRIORITY_MIN, payloads.PRIORITY_MAX) == (-100, 100)


# -- property: arbitrary input either decodes or raises ContractError ------------------

json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
FIELD_NAMES = sorted(
    {f.name for _, proto in PAIRS for f in dataclasses.fields(proto)} | {"Retry-After", "type"}
)
interesting = (
    json_scalars
    | st.uuids().map(str)
    | st.datetimes().map(datetime.isoformat)
    | st.sampled_from(
        ["completed", "failed", "error", "Urgent", "RateLimit", "created", "payments"]
    )
)
field_dicts = st.recursive(
    st.dictionaries(st.sampled_from(FIELD_NAMES), interesting, max_size=8),
    lambda children: st.dictionaries(
        st.sampled_from(FIELD_NAMES), interesting | children, max_size=8
    ),
    max_leaves=20,
)


def _decode_or_contract_error(decode: Decoder, encode: Encoder, payload: Any) -> None:
    try:
        decoded = decode(payload)
    except ContractError:
        return
    # Anything accepted is stable under re-encoding.
    assert decode(encode(decoded)) == decoded


@pytest.mark.parametrize(("name", "decode", "encode", "payload"), CODECS, ids=CODEC_IDS)
@settings(max_examples=150, deadline=None)
@given(junk=json_values | field_dicts)
def test_random_input_only_raises_contract_error(
    name: str, decode: Decoder, encode: Encoder, payload: dict[str, Any], junk: Any
) -> None:
    _decode_or_contract_error(decode, encode, junk)
    _decode_or_contract_error(decode, encode, json.dumps(junk))


def _paths(node: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = []
    if isinstance(node, dict):
        for key, value in node.items():
            found.append((*prefix, key))
            found.extend(_paths(value, (*prefix, key)))
    return found


@pytest.mark.parametrize(("name", "decode", "encode", "payload"), CODECS, ids=CODEC_IDS)
@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_mutated_payloads_only_raise_contract_error(
    name: str, decode: Decoder, encode: Encoder, payload: dict[str, Any], data: st.DataObject
) -> None:
    mutated = copy.deepcopy(payload)
    for _ in range(data.draw(st.integers(1, 3))):
        paths = _paths(mutated)
        if not paths:
            break
        *parents, last = data.draw(st.sampled_from(paths))
        node = mutated
        for part in parents:
            node = node[part]
        if data.draw(st.booleans()):
            del node[last]
        else:
            node[last] = data.draw(json_values | interesting)
    _decode_or_contract_error(decode, encode, mutated)
