"""The queue codecs come from the one contract: every field of messages.proto round-trips, every
malformed field is rejected naming it, the wire format is the one the hand-written codecs
wrote, and a value object or rule that drifts from the proto stops the codec from building."""

from __future__ import annotations

import json
import shutil
import typing
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from tasker_shared.contracts import codegen, payloads, schemagen
from tasker_shared.contracts import messages as m
from tasker_shared.contracts.codec import Codec, Contract, Rule
from tasker_shared.contracts.queue_schema import ENUMS, MESSAGES
from tasker_shared.errors import ContractError
from tests.unit.test_messages import DROP, _mutate

CODECS = {
    "StepMessage": (m.decode_step_message, m.encode_step_message),
    "TaskRequest": (m.decode_task_request, m.encode_task_request),
    "TaskRequestMessage": (m.decode_task_request_message, m.encode_task_request_message),
    "StepExecutionResult": (m.decode_step_execution_result, m.encode_step_execution_result),
    "FinalizationRequest": (m.decode_finalization_request, m.encode_finalization_request),
    "TaskRequestOutcome": (m.decode_task_request_outcome, m.encode_task_request_outcome),
}
UUID_TEXT = "0191f1a2-0000-7000-8000-000000000001"
WHEN = "2026-01-05T10:00:00.123456Z"


# -- the payloads, built from the schema ------------------------------------------------


def _fields(message: str) -> Iterator[tuple[str, str, str, bool]]:
    """(name, kind, proto type, is a UUID) of each field; UUIDs are said by the value object."""
    hints = typing.get_type_hints(getattr(payloads, message))
    for name, kind, type_name, _, repeated in MESSAGES[message]:
        uuid = UUID in (hints[name], *typing.get_args(hints[name]))
        yield name, "repeated" if repeated else kind, type_name, uuid


def _sample(kind: str, type_name: str, uuid: bool) -> Any:
    """A valid JSON value for a field (the last enum value: never a default)."""
    if kind == "message":
        return full(type_name)
    if kind == "enum":
        return ENUMS[type_name][-1][0].lower()
    return {
        "string": UUID_TEXT if uuid else "text", "bool": True, "int32": 7, "uint32": 7,
        "int64": 7, "uint64": 7, "struct": {"k": [1, {"n": None}]}, "timestamp": WHEN,
        "map": {"Retry-After": "5"}, "repeated": ["a", "b"],
    }[kind]


def full(message: str) -> dict[str, Any]:
    """`message` with every field of the proto set, in declaration order."""
    return {name: _sample(kind, type_name, uuid)
            for name, kind, type_name, uuid in _fields(message)}


def _paths(message: str, prefix: str = "") -> Iterator[tuple[str, str, str, bool]]:
    """(dotted path, kind, proto type, is a UUID) of every field, nested messages included."""
    for name, kind, type_name, uuid in _fields(message):
        yield f"{prefix}{name}", kind, type_name, uuid
        if kind == "message":
            yield from _paths(type_name, f"{prefix}{name}.")


# Values no field of the kind accepts: (value, the part of the path the rejection names).
_BAD: dict[str, list[tuple[Any, str]]] = {
    "string": [(5, ""), (True, ""), ([], ""), ({}, "")],
    "bool": [("true", ""), (1, ""), ([], "")],
    "int": [("7", ""), (7.5, ""), (True, ""), (2**64, ""), (-(2**63) - 1, "")],
    "enum": [("no_such_value", ""), (True, ""), ([], ""), (99, "")],
    "struct": [([], ""), ("x", ""), (1, "")],
    "timestamp": [("noon", ""), (1_700_000_000, ""), ({}, "")],
    "map": [([], ""), ({"Retry-After": 5}, ".Retry-After")],
    "repeated": [("a", ""), (["a", 1], "[1]")],
    "message": [("x", ""), ([], ""), (1, "")],
}


def _bad(kind: str, uuid: bool) -> list[tuple[Any, str]]:
    if kind in ("int32", "uint32", "int64", "uint64"):
        return _BAD["int"]
    return _BAD[kind] + ([("not-a-uuid", "")] if uuid else [])


CASES = [(name, path, kind, type_name, uuid)
         for name in CODECS for path, kind, type_name, uuid in _paths(name)]
each_field = pytest.mark.parametrize(("name", "path", "kind", "type_name", "uuid"), CASES,
                                     ids=[f"{case[0]}.{case[1]}" for case in CASES])


# -- round trips and the wire format ----------------------------------------------------


def test_every_payload_message_has_a_codec() -> None:
    reachable = {kind_or_name for name in CODECS
                 for kind_or_name in [name, *(t for _, k, t, _ in _paths(name) if k == "message")]}
    assert reachable == set(MESSAGES)


@pytest.mark.parametrize("name", CODECS)
def test_every_field_round_trips_in_declaration_order(name: str) -> None:
    decode, encode = CODECS[name]
    payload = full(name)
    decoded = decode(payload)
    assert encode(decoded) == payload
    assert json.dumps(encode(decoded)) == json.dumps(payload)  # same keys, same order
    assert decode(json.dumps(payload)) == decoded


# What the hand-written codecs of 71babf8 wrote for these values (json.dumps, compact).
WIRE = [
    ("StepMessage", '{"task_uuid":"0191f1a2-0000-7000-8000-000000000001","step_uuid":'
                    '"0191f1a2-0000-7000-8000-000000000002","correlation_id":'
                    '"0191f1a2-0000-7000-8000-000000000003"}'),
    ("TaskRequestMessage", '{"request_id":"r-1","task_request":{"name":"refund","namespace":'
     '"default","version":"0.1.0","context":{},"initiator":"system","source_system":'
     '"tasker-core","reason":"Task requested","tags":[],"requested_at":'
     '"2026-01-05T10:00:00.123456Z","correlation_id":"0191f1a2-0000-7000-8000-000000000001"},'
     '"metadata":{"requested_at":"2026-01-05T10:00:00.123456Z","requester":"system",'
     '"priority":"normal","custom":{}}}'),
    ("TaskRequestMessage", '{"request_id":"r-2","task_request":{"name":"refund","namespace":'
     '"payments","version":"1.0.0","context":{"a":[1,{"b":null}]},"initiator":"system",'
     '"source_system":"tasker-core","reason":"Task requested","tags":["x","y"],"requested_at":'
     '"2026-01-05T10:00:00Z","options":{"o":1},"priority":-3,"correlation_id":'
     '"0191f1a2-0000-7000-8000-000000000001","parent_correlation_id":'
     '"0191f1a2-0000-7000-8000-000000000002","idempotency_key":"k"},"metadata":{"requested_at":'
     '"2026-01-05T10:00:00.123456Z","requester":"gw","priority":"urgent","custom":{"c":1}}}'),
    ("StepExecutionResult", '{"step_uuid":"0191f1a2-0000-7000-8000-000000000002","success":true,'
     '"result":{"n":1},"status":"completed","metadata":{"execution_time_ms":12,"retryable":false,'
     '"completed_at":"2026-01-05T10:00:00.123456Z","started_at":"2026-01-05T10:00:00.123456Z",'
     '"worker_id":"w-1","custom":{},"context":{}}}'),
    ("StepExecutionResult", '{"step_uuid":"0191f1a2-0000-7000-8000-000000000002","success":false,'
     '"result":{},"status":"error","error":{"message":"m","error_type":"t","backtrace":["l1"],'
     '"retryable":true,"status_code":503,"context":{"u":1}},"metadata":{"execution_time_ms":5,'
     '"handler_version":"1","retryable":true,"completed_at":"2026-01-05T10:00:00.123456Z",'
     '"started_at":"2026-01-05T10:00:00.123456Z","worker_id":"w","worker_hostname":"h",'
     '"custom":{"k":"v"},"error_code":"E","error_type":"t","context":{"a":2},'
     '"checkpoint_yield":true},"orchestration_metadata":{"headers":{"Retry-After":"5"},'
     '"error_context":"ctx","backoff_hint":{"backoff_type":"rate_limit","delay_seconds":5,'
     '"context":{"s":1}},"custom":{"x":1}}}'),
    ("FinalizationRequest", '{"task_uuid":"0191f1a2-0000-7000-8000-000000000001"}'),
    ("FinalizationRequest", '{"task_uuid":"0191f1a2-0000-7000-8000-000000000001",'
                            '"reason":"step_result"}'),
    ("TaskRequestOutcome", '{"request_id":"r-1","outcome":"duplicate","task_uuid":'
                           '"0191f1a2-0000-7000-8000-000000000001","reason":"same key"}'),
    ("TaskRequestOutcome", '{"request_id":"r-1","outcome":"invalid","reason":"bad"}'),
]


@pytest.mark.parametrize(("name", "text"), WIRE)
def test_messages_already_on_the_queues_decode_and_encode_to_the_same_bytes(
        name: str, text: str) -> None:
    decode, encode = CODECS[name]
    assert json.dumps(encode(decode(text)), separators=(",", ":")) == text


# -- rejections -------------------------------------------------------------------------


@each_field
def test_every_malformed_field_is_rejected_naming_it(
        name: str, path: str, kind: str, type_name: str, uuid: bool) -> None:
    decode, _ = CODECS[name]
    payload = full(name)
    for value, suffix in _bad(kind, uuid):
        with pytest.raises(ContractError) as info:
            decode(_mutate(payload, path, value))
        field_path = f"{name}.{path}{suffix}"
        assert info.value.details == {"field": field_path}, (value, str(info.value))
        assert str(info.value).startswith(f"{field_path}: ")


@each_field
def test_a_field_left_out_or_null_decodes_to_its_default_or_is_named_as_required(
        name: str, path: str, kind: str, type_name: str, uuid: bool) -> None:
    decode, _ = CODECS[name]
    payload = full(name)
    problems: list[tuple[Any, str] | None] = []
    for value in (DROP, None):
        try:
            decode(_mutate(payload, path, value))
            problems.append(None)
        except ContractError as exc:
            problems.append((exc.details, str(exc)))
    assert problems[0] == problems[1]
    if problems[0] is not None:
        assert problems[0] == ({"field": f"{name}.{path}"}, f"{name}.{path}: is required")


# -- the contract is enforced when the codecs are built ---------------------------------


@dataclass(frozen=True, kw_only=True)
class StepMessage:  # the proto has task_uuid, step_uuid and correlation_id
    task_uuid: UUID
    step_uuid: UUID


@dataclass(frozen=True, kw_only=True)
class FinalizationRequest:
    task_uuid: UUID
    reason: str | None = None
    priority: int = 0


@dataclass(frozen=True, kw_only=True)
class TaskRequestOutcome:
    request_id: int
    outcome: payloads.RequestOutcome
    task_uuid: UUID | None = None
    reason: str | None = None


class RequestOutcome(StrEnum):
    CREATED = "created"
    DUPLICATE = "duplicate"


@dataclass(frozen=True, kw_only=True)
class BackoffHint:
    backoff_type: RequestOutcome
    delay_seconds: int
    context: dict[str, Any] | None = None


@dataclass(frozen=True, kw_only=True)
class TaskRequest:
    name: str = field(default="x")
    namespace: str | None = None
    version: str = ""
    context: dict[str, Any] = field(default_factory=dict)
    initiator: str = ""
    source_system: str = ""
    reason: str = ""
    tags: tuple[str, ...] = ()
    requested_at: Any = None
    options: dict[str, Any] | None = None
    priority: int | None = None
    correlation_id: UUID | None = None
    parent_correlation_id: UUID | None = None
    idempotency_key: str | None = None


class Unknown:
    pass


@pytest.mark.parametrize(("cls", "contract", "problem"), [
    (StepMessage, m.CONTRACT, "payloads.StepMessage does not mirror its proto message: "
                              "missing ['correlation_id'], extra []"),
    (FinalizationRequest, m.CONTRACT, "extra ['priority']"),
    (TaskRequestOutcome, m.CONTRACT, "payloads.TaskRequestOutcome.request_id is a <class 'int'>"
                                     ", which cannot hold a proto string"),
    (BackoffHint, m.CONTRACT, "payloads.BackoffHint.backoff_type must be a BackoffType"),
    (TaskRequest, m.CONTRACT, "payloads.TaskRequest.namespace defaults to None, but the proto "
                              "field has no presence"),
    (payloads.StepMessage, Contract(rules={"StepMessage": {"task_id": Rule(required=True)}}),
     "rules for StepMessage name no field of it: ['task_id']"),
    (Unknown, m.CONTRACT, "Unknown is not a message of messages.proto"),
])
def test_a_value_object_or_rule_that_drifts_from_the_proto_fails_to_build(
        cls: type, contract: Contract, problem: str) -> None:
    with pytest.raises(TypeError) as info:
        Codec(cls, contract)
    assert problem in str(info.value)


@dataclass(frozen=True, kw_only=True)
class Outcome:
    request_id: str
    outcome: RequestOutcome  # the proto's RequestOutcome also has INVALID
    task_uuid: UUID | None = None
    reason: str | None = None


def test_an_enum_that_drifts_from_the_proto_fails_to_build() -> None:
    Outcome.__name__ = "TaskRequestOutcome"
    with pytest.raises(TypeError) as info:
        Codec(Outcome, m.CONTRACT)
    assert str(info.value) == ("payloads.RequestOutcome does not mirror the proto enum "
                               "RequestOutcome (values: ['created', 'duplicate', 'invalid'])")


# -- queue_schema follows messages.proto -------------------------------------------------


def test_queue_schema_is_current() -> None:
    assert not schemagen.stale(codegen.PROTO_ROOT)


def test_a_field_added_to_the_proto_reaches_the_schema(tmp_path: Path) -> None:
    root = tmp_path / "proto"
    shutil.copytree(codegen.PROTO_ROOT, root)
    proto = root / "tasker" / "v1" / "messages.proto"
    text = proto.read_text(encoding="utf-8")
    proto.write_text(text.replace("  string correlation_id = 3;\n}",
                                  "  string correlation_id = 3;\n  optional uint32 hops = 4;\n}", 1),
                     encoding="utf-8")
    assert '("hops", "uint32", "", True, False),' in schemagen.render(root)
    assert schemagen.stale(root)
