"""The gateway's gRPC codec: responses encoded through protobuf's C serializer carry exactly
what betterproto2's own serializer writes; requests decode to the same betterproto2 messages
as betterproto2's parser gives, and bad input is INVALID_ARGUMENT naming the problem."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from grpclib.const import Status
from grpclib.exceptions import GRPCError
from grpclib.health.v1.health_pb2 import HealthCheckRequest

from tasker_gateway.grpc.codec import decode, encode, parser_for
from tasker_shared.contracts.generated.google.protobuf import Struct
from tasker_shared.contracts.generated.tasker import v1 as pb

WHEN = datetime(2026, 3, 4, 5, 6, 7, 891_000, tzinfo=UTC)
CONTEXT = {"n": 2, "pi": 3.5, "neg": -7, "big": 2**52, "s": "é\u00e9 ☃", "t": True, "f": False,
           "null": None, "list": [1, "two", None, [3, {"x": []}], {}], "empty": {}}


def task() -> pb.Task:
    return pb.Task(
        task_uuid="u1", name="linear", namespace="examples", version="1.0.0",
        status=pb.TaskState.STEPS_IN_PROCESS, created_at=WHEN, context=Struct.from_dict(CONTEXT),
        priority=-3, tags=["a", "b"], parent_correlation_id="", total_steps=4,
        completion_percentage=37.5, health_status=pb.TaskHealthStatus(1),
        steps=[pb.StepReadiness(name="s1", current_state=pb.StepState.ENQUEUED)])


def same_wire(message: Any) -> None:
    upb = parser_for(type(message))
    assert upb.FromString(encode(message)) == upb.FromString(bytes(message))


def test_responses_encode_as_betterproto2_would() -> None:
    same_wire(pb.GetTaskResponse(task=task()))
    same_wire(pb.ListTasksResponse(tasks=[task(), pb.Task()], pagination=pb.PaginationResponse(
        page=1, per_page=25, total_count=2**40, has_next=True)))
    same_wire(pb.GetStepResponse(step=pb.Step(name="s", backoff_request_seconds=0,
                                              results=Struct.from_dict({"r": [1.25]}))))
    same_wire(pb.CreateTaskResponse())


def test_requests_decode_as_betterproto2_would() -> None:
    request = pb.CreateTaskRequest(task=pb.TaskRequest(
        name="linear", context=Struct.from_dict(CONTEXT), priority=0, tags=["x"],
        requested_at=WHEN), wait=False, wait_timeout_ms=1500, request_id="r-1")
    data = bytes(request)
    assert decode(data, pb.CreateTaskRequest) == pb.CreateTaskRequest.parse(data)
    listing = pb.ListTasksRequest(pagination=pb.PaginationRequest(page=3), namespace="",
                                  status=pb.TaskState.COMPLETE)
    assert decode(bytes(listing), pb.ListTasksRequest) == listing
    assert decode(b"", pb.GetTaskRequest) == pb.GetTaskRequest()
    health = decode(HealthCheckRequest(service="x").SerializeToString(), HealthCheckRequest)
    assert health.service == "x"


def refused(data: bytes, message_type: Any, *phrases: str) -> None:
    with pytest.raises(GRPCError) as info:
        decode(data, message_type)
    assert info.value.status is Status.INVALID_ARGUMENT
    for phrase in phrases:
        assert phrase in (info.value.message or ""), info.value.message


def test_unknown_enum_numbers_are_named_with_their_field() -> None:
    upb = parser_for(pb.ListTasksRequest)(status=42)
    refused(upb.SerializeToString(), pb.ListTasksRequest, "status: 42 is not a TaskState value")
    response = parser_for(pb.GetTaskResponse)()
    response.task.steps.add(name="s").current_state = 77
    refused(response.SerializeToString(), pb.GetTaskResponse,
            "task.steps.current_state: 77 is not a StepState value")


def test_bad_bytes_are_invalid_argument() -> None:
    refused(b"\x0a\x02\xc3\x28", pb.GetTaskRequest, "tasker.v1.GetTaskRequest",
            "not valid UTF-8")
    refused(b"\xff\xff\xff", pb.GetTaskRequest, "not valid protobuf")
    refused(b"\xff\xff", HealthCheckRequest, "grpc.health.v1.HealthCheckRequest")
    nan = parser_for(pb.CreateTaskRequest)()
    nan.task.context.update({"x": float("inf")})
    refused(nan.SerializeToString(), pb.CreateTaskRequest, "Infinity")


def test_nesting_past_protobufs_limit_is_refused_without_recursion() -> None:
    struct = b""
    for _ in range(3000):  # {"a": {"a": ...}}, past the interpreter's recursion limit
        inner = b"\x0a\x01a" + b"\x12" + _varint(len(struct) + 1 + len(_varint(len(struct)))) \
            + b"\x2a" + _varint(len(struct)) + struct
        struct = b"\x0a" + _varint(len(inner)) + inner
    refused(b"\x4a" + _varint(len(struct)) + struct, pb.Task, "nests deeper than protobuf")


def _varint(value: int) -> bytes:
    out = b""
    while True:
        out += bytes([(value & 0x7F) | (0x80 if value > 0x7F else 0)])
        value >>= 7
        if not value:
            return out
