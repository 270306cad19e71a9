"""Hostile input on the gRPC API, sent with the official grpcio library as raw bytes (so
that nothing on the client side can refuse or repair it): oversize messages, deep and wide
Structs, unknown enum values, page overflow, malformed protobuf, invalid UTF-8, compressed
messages. Each gets INVALID_ARGUMENT / RESOURCE_EXHAUSTED (UNIMPLEMENTED for compression)
with a message naming the problem, nothing is stored, no traceback is logged, and a normal
call succeeds afterwards."""

from __future__ import annotations

import logging
from typing import Any

import grpc
import pytest
import trio
from google.protobuf import message_factory
from grpclib.const import Cardinality, Status
from grpclib.exceptions import GRPCError
from trio_asyncio import aio_as_trio

from tasker_gateway.grpc.reflection import descriptor_pool
from tasker_shared.contracts.generated.tasker import v1 as pb
from tests.gateway.conftest import Gateway, grpc_client, running_gateway

CREATE = "/tasker.v1.TaskService/CreateTask"
GET = "/tasker.v1.TaskService/GetTask"
LIST = "/tasker.v1.TaskService/ListTasks"
MB = 1_048_576


def message(type_name: str, **fields: Any) -> Any:
    """A tasker.v1 message built by protobuf itself (no checks beyond the wire format)."""
    cls = message_factory.GetMessageClass(descriptor_pool().FindMessageTypeByName(
        f"tasker.v1.{type_name}"))
    return cls(**fields)


def create_request(context: dict[str, Any]) -> Any:
    request = message("CreateTaskRequest", wait=False)
    request.task.name = "linear_workflow"
    request.task.namespace = "examples"
    request.task.version = "1.0.0"
    request.task.context.update(context)
    return request


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field."""
    size, length = len(payload), b""
    while True:
        length += bytes([(size & 0x7F) | (0x80 if size > 0x7F else 0)])
        size >>= 7
        if not size:
            return bytes([number << 3 | 2]) + length + payload


def deep_create_request(depth: int, context: bytes = b"") -> bytes:
    """A CreateTaskRequest whose context nests `depth` objects ({"a": {"a": ...}}) around
    the encoded Struct `context`, built bottom-up (protobuf's own Struct.update recurses
    and cannot build deep ones)."""
    struct = context
    for _ in range(depth):  # Struct{fields: {"a": Value{struct_value: struct}}}
        struct = _field(1, _field(1, b"a") + _field(2, _field(5, struct)))
    base = create_request({})
    context = base.task.DESCRIPTOR.fields_by_name["context"].number
    task = base.task.SerializeToString() + _field(context, struct)
    base.ClearField("task")
    return _field(base.DESCRIPTOR.fields_by_name["task"].number, task) + base.SerializeToString()


def raw_call(port: int, method: str, payload: bytes, *,
             compression: grpc.Compression | None = None) -> tuple[str, str, bytes | None]:
    """(status name, details, reply bytes) of one unary call carrying `payload` as is."""
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        call = channel.unary_unary(method)
        try:
            reply = call(payload, timeout=60, compression=compression)
        except grpc.RpcError as exc:
            return exc.code().name, exc.details() or "", None
        return "OK", "", reply


async def rpc(gw: Gateway, method: str, payload: bytes, **kwargs: Any
              ) -> tuple[str, str, bytes | None]:
    return await trio.to_thread.run_sync(
        lambda: raw_call(gw.grpc_port, method, payload, **kwargs))


async def assert_still_serving(gw: Gateway, *, tasks: int = 0) -> None:
    status, details, reply = await rpc(gw, LIST, message("ListTasksRequest").SerializeToString())
    assert status == "OK", details
    assert reply is not None
    assert message("ListTasksResponse").FromString(reply).pagination.total_count == tasks


@pytest.fixture
def no_tracebacks(caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]) -> Any:
    """Fails the test if the gateway logged an error or a traceback for a client's mistake."""
    caplog.set_level(logging.WARNING)
    yield
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not errors, [r.getMessage() for r in errors]
    err = capfd.readouterr().err
    assert "Traceback" not in err and "grpc_call_failed" not in err, err[-3000:]


async def test_oversize_message_is_refused_before_it_is_read(gw: Gateway,
                                                             no_tracebacks: None) -> None:
    big = create_request({"blob": "x" * (2 * MB)}).SerializeToString()
    status, details, _ = await rpc(gw, CREATE, big)
    assert status == "RESOURCE_EXHAUSTED", details
    assert f"at most {MB} bytes" in details and "grpc_max_message_bytes" in details
    # a million keys do not fit in the limit: refused from the length prefix, never decoded
    # Struct{fields: {"k000000": true, ...}}: map entry (13 bytes) = key (7) + Value{true}
    entries = b"".join(b"\x0a\x0d\x0a\x07k%06d\x12\x02\x20\x01" % i for i in range(1_000_000))
    wide = deep_create_request(0, context=entries)
    status, details, _ = await rpc(gw, CREATE, wide)
    assert status == "RESOURCE_EXHAUSTED", details
    assert gw.sql("SELECT count(*) AS n FROM tasker.tasks")[0]["n"] == 0
    await assert_still_serving(gw)


async def test_deep_structs_are_invalid_argument(gw: Gateway, no_tracebacks: None) -> None:
    for depth in (40, 200, 5000):
        payload = deep_create_request(depth)
        assert len(payload) < MB
        status, details, _ = await rpc(gw, CREATE, payload)
        assert status == "INVALID_ARGUMENT", (depth, details)
        assert "nest" in details, details
    assert gw.sql("SELECT count(*) AS n FROM tasker.tasks")[0]["n"] == 0
    await assert_still_serving(gw)


async def test_widest_struct_within_the_limit_is_handled(db_url: str,
                                                         no_tracebacks: None) -> None:
    keys = 65_000  # about as many keys as fit in 1 MB of protobuf
    payload = create_request(
        {"even_number": 2, **{f"k{i:05}": True for i in range(keys)}}).SerializeToString()
    assert len(payload) < MB
    async with running_gateway(db_url, ingestion=False) as gw:
        status, details, reply = await rpc(gw, CREATE, payload)
        assert status == "OK", details
        assert reply is not None
        accepted = message("CreateTaskResponse").FromString(reply)
        queued = gw.sql("SELECT message->'task_request'->'context' AS context"
                        " FROM pgmq.q_orchestration_task_requests"
                        " WHERE message->>'request_id' = %s", (accepted.request_id,))
        context = queued[0]["context"]
        assert len(context) == keys + 1 and context["k00042"] is True
        assert context["even_number"] == 2


async def test_unknown_enum_values_are_invalid_argument(gw: Gateway,
                                                        no_tracebacks: None) -> None:
    cases = [(LIST, message("ListTasksRequest", status=99), "status: 99"),
             (LIST, message("ListTasksRequest", sort_direction=7), "sort_direction: 7"),
             ("/tasker.v1.DlqService/ListEntries",
              message("ListDlqEntriesRequest", resolution_status=12345),
              "resolution_status: 12345"),
             ("/tasker.v1.StepService/ResolveStep",
              message("ResolveStepRequest", task_uuid="00000000-0000-0000-0000-000000000001",
                      step_uuid="00000000-0000-0000-0000-000000000002", action=42),
              "action: 42")]
    for method, request, expected in cases:
        status, details, _ = await rpc(gw, method, request.SerializeToString())
        assert status == "INVALID_ARGUMENT", (method, details)
        assert expected in details, details
    await assert_still_serving(gw)


async def test_page_overflow_is_invalid_argument(gw: Gateway, no_tracebacks: None) -> None:
    for page, per_page in ((4_000_000_000, 10), (2**32 - 1, 2**32 - 1), (1, 2**32 - 1)):
        request = message("ListTasksRequest")
        request.pagination.page = page
        request.pagination.per_page = per_page
        status, details, _ = await rpc(gw, LIST, request.SerializeToString())
        assert status == "INVALID_ARGUMENT", (page, per_page, details)
        assert "page" in details, details
    request = message("ListDlqEntriesRequest")
    request.pagination.offset = 2**32 - 1
    status, details, _ = await rpc(gw, "/tasker.v1.DlqService/ListEntries",
                                   request.SerializeToString())
    assert status == "INVALID_ARGUMENT" and "offset" in details, details
    await assert_still_serving(gw)


async def test_malformed_protobuf_is_invalid_argument(gw: Gateway, no_tracebacks: None) -> None:
    valid = create_request({"even_number": 2}).SerializeToString()
    for payload in (b"\xff\xff\xff\xff", b"\x0a\x10abc", valid[:-3], b"\x08"):
        for method in (CREATE, GET, LIST):
            status, details, _ = await rpc(gw, method, payload)
            assert status == "INVALID_ARGUMENT", (method, payload, details)
            assert "not a valid tasker.v1." in details, details
    status, details, _ = await rpc(gw, "/grpc.health.v1.Health/Check", b"\xff\xff")
    assert status == "INVALID_ARGUMENT", details
    assert gw.sql("SELECT count(*) AS n FROM tasker.tasks")[0]["n"] == 0
    await assert_still_serving(gw)


async def test_invalid_utf8_is_invalid_argument(gw: Gateway, no_tracebacks: None) -> None:
    bad = b"\xff\xfe\xc3\x28"
    # GetTaskRequest.task_uuid (field 1, a string) holding bytes that are not UTF-8
    status, details, _ = await rpc(gw, GET, b"\x0a" + bytes([len(bad)]) + bad)
    assert status == "INVALID_ARGUMENT", details
    assert "UTF-8" in details, details
    # and inside a Struct key of a task's context
    request = create_request({"ok": 1}).SerializeToString()
    patched = request.replace(b"ok", b"\xff\xfe")
    status, details, _ = await rpc(gw, CREATE, patched)
    assert status == "INVALID_ARGUMENT" and "UTF-8" in details, details
    await assert_still_serving(gw)


async def test_non_finite_numbers_and_compression(gw: Gateway, no_tracebacks: None) -> None:
    request = create_request({"x": float("nan")}).SerializeToString()
    status, details, _ = await rpc(gw, CREATE, request)
    assert status == "INVALID_ARGUMENT" and "NaN" in details, details
    compressible = message("ListTasksRequest", name="x" * 1000).SerializeToString()
    status, details, _ = await rpc(gw, LIST, compressible, compression=grpc.Compression.Gzip)
    assert status == "UNIMPLEMENTED" and "compress" in details, details
    await assert_still_serving(gw)


async def test_missing_and_truncated_messages_are_invalid_argument(
        gw: Gateway, no_tracebacks: None) -> None:
    async def call(body: bytes | None) -> GRPCError:
        # declared client-streaming so that grpclib lets the client send no message
        async with rpc.channel.request(LIST, Cardinality.STREAM_UNARY, pb.ListTasksRequest,
                                       pb.ListTasksResponse, timeout=10) as stream:
            await stream.send_request(end=body is None)
            if body is not None:  # raw bytes after the headers (grpclib's own h2 stream)
                await stream._stream.send_data(body, end_stream=True)
                stream._end_done = True
            with pytest.raises(GRPCError) as info:
                await stream.recv_message()
            return info.value

    async with grpc_client(gw.grpc_port) as rpc:
        for body, expected in ((None, "no request message"),
                               (b"\x00\x00\x00\x00\x64" + b"\x08" * 10, "truncated"),
                               (b"\x00\x00", "truncated")):
            error = await aio_as_trio(call)(body)
            assert error.status is Status.INVALID_ARGUMENT, error
            assert expected in (error.message or ""), error
    await assert_still_serving(gw)


async def test_a_larger_configured_limit_is_honoured(db_url: str) -> None:
    async with running_gateway(db_url, gateway={"grpc_max_message_bytes": 3 * MB}) as gw:
        payload = create_request({"blob": "x" * (2 * MB)}).SerializeToString()
        status, details, _ = await rpc(gw, CREATE, payload)
        assert status != "RESOURCE_EXHAUSTED", details
        payload = create_request({"blob": "x" * (4 * MB)}).SerializeToString()
        status, details, _ = await rpc(gw, CREATE, payload)
        assert status == "RESOURCE_EXHAUSTED" and f"at most {3 * MB} bytes" in details
