"""Unit tests for error translation, value conversion, results and the retry budget."""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import AsyncGenerator, Coroutine
from typing import Any
from uuid import UUID

import pytest
from grpclib.const import Status
from grpclib.exceptions import GRPCError, ProtocolError, StreamTerminatedError

from tasker_client import CreateTaskResult, SyncTaskerClient, is_terminal
from tasker_client.config import RetryPolicy
from tasker_client.convert import (
    from_struct,
    label,
    parse_enum,
    to_jsonable,
    to_struct,
    uuid_text,
)
from tasker_client.errors import (
    AuthError,
    ConflictError,
    DeadlineExceeded,
    NotFoundError,
    PermissionDenied,
    RpcError,
    TaskerError,
    TransitionRejected,
    Unavailable,
    ValidationError,
)
from tasker_client.loop_thread import LoopStream
from tasker_client.proto.tasker.v1 import (
    CreateTaskStatus,
    DlqResolutionStatus,
    SortDirection,
    Task,
    TaskState,
)
from tasker_client.retry import Attempts
from tasker_client.status import from_grpc, retry_after_hint, translate
from tests.client.conftest import free_port


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (Status.NOT_FOUND, NotFoundError),
        (Status.ALREADY_EXISTS, ConflictError),
        (Status.INVALID_ARGUMENT, ValidationError),
        (Status.UNAUTHENTICATED, AuthError),
        (Status.PERMISSION_DENIED, PermissionDenied),
        (Status.FAILED_PRECONDITION, TransitionRejected),
        (Status.DEADLINE_EXCEEDED, DeadlineExceeded),
        (Status.UNAVAILABLE, Unavailable),
        (Status.RESOURCE_EXHAUSTED, Unavailable),
        (Status.INTERNAL, RpcError),
    ],
)
def test_from_grpc(status: Status, cls: type[TaskerError]) -> None:
    err = from_grpc(GRPCError(status, "boom"))
    assert type(err) is cls
    assert err.message == "boom"
    assert err.details["grpc_status"] == status.name


def test_from_grpc_defaults_and_retry_hint() -> None:
    err = from_grpc(GRPCError(Status.UNIMPLEMENTED))
    assert isinstance(err, RpcError)
    assert (err.status, err.message) == ("UNIMPLEMENTED", "unimplemented")
    busy = from_grpc(GRPCError(Status.RESOURCE_EXHAUSTED, "queues full; retry after 7s"))
    assert isinstance(busy, Unavailable)
    assert busy.retry_after == 7
    assert busy.retryable
    assert retry_after_hint("Retry-After: 3") == 3
    assert retry_after_hint("nothing here") == 0


def test_translate() -> None:
    original = NotFoundError("x")
    assert translate(original) is original
    assert isinstance(translate(GRPCError(Status.NOT_FOUND, "m")), NotFoundError)
    assert isinstance(translate(TimeoutError()), DeadlineExceeded)
    down = translate(ConnectionRefusedError(111, "refused"), target="gateway at h:1")
    assert isinstance(down, Unavailable)
    assert "gateway at h:1" in down.message
    assert isinstance(translate(StreamTerminatedError()), Unavailable)
    assert isinstance(translate(ProtocolError("bad")), RpcError)
    assert translate(ValueError("a bug")) is None


def test_struct_round_trip() -> None:
    data = {"a": 1, "b": [1, "x", None, True], "c": {"d": 2.5, "e": -3.0}, "f": 1e300}
    back = from_struct(to_struct(data))
    assert back == data
    assert type(back["a"]) is int
    assert type(back["c"]["e"]) is int
    assert type(back["c"]["d"]) is float
    assert type(back["f"]) is float
    assert to_struct(None) is None
    assert from_struct(None) == {}
    with pytest.raises(ValidationError):
        to_struct([1, 2])  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        to_struct({"when": object()})


def test_uuid_text() -> None:
    value = UUID("3f1e8a4e-0c9b-4bb1-9b5e-0d1a7f6f0e11")
    assert uuid_text(value, "x") == str(value)
    assert uuid_text(str(value).upper(), "x") == str(value)
    with pytest.raises(ValidationError, match="task_uuid"):
        uuid_text("nope", "task_uuid")


def test_parse_enum_and_label() -> None:
    for text in ("complete", "COMPLETE", "task_state_complete", TaskState.COMPLETE, 9):
        assert parse_enum(TaskState, text) is TaskState.COMPLETE
    assert parse_enum(SortDirection, "asc") is SortDirection.ASC
    assert parse_enum(DlqResolutionStatus, "manually-resolved") is (
        DlqResolutionStatus.MANUALLY_RESOLVED
    )
    with pytest.raises(ValidationError, match="choose from pending"):
        parse_enum(TaskState, "finished")
    with pytest.raises(ValidationError):
        parse_enum(TaskState, "unspecified")
    assert label(TaskState.WAITING_FOR_RETRY) == "waiting_for_retry"
    assert label(TaskState.UNSPECIFIED) == ""
    assert label(None) == ""
    assert label(TaskState(99)) == "unknown(99)"


def test_to_jsonable_uses_proto_names_and_defaults() -> None:
    created = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
    data = to_jsonable(Task(task_uuid="u", status=TaskState.COMPLETE, created_at=created))
    assert data["task_uuid"] == "u"
    assert data["status"] == "TASK_STATE_COMPLETE"
    assert data["created_at"].startswith("2026-01-02T03:04:05")
    assert data["total_steps"] == 0


def test_results_helpers() -> None:
    created = CreateTaskResult(status=CreateTaskStatus.CREATED, request_id="r", task_uuid="t",
                               task=None)
    accepted = CreateTaskResult(status=CreateTaskStatus.ACCEPTED, request_id="r",
                                task_uuid=None, task=None)
    assert created.created
    assert not accepted.created
    assert is_terminal(TaskState.CANCELLED)
    assert not is_terminal(TaskState.STEPS_IN_PROCESS)
    assert not is_terminal(None)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _run(coro: Coroutine[Any, Any, Any]) -> Any:
    with asyncio.Runner(loop_factory=asyncio.SelectorEventLoop) as runner:
        return runner.run(coro)


def test_attempts_retry_then_give_up() -> None:
    policy = RetryPolicy(max_attempts=3, initial_backoff=0.001, max_backoff=0.002, jitter=0.5)
    attempts = Attempts(policy, None, rng=lambda: 1.0)
    assert attempts.begin() is None
    unavailable = GRPCError(Status.UNAVAILABLE, "down")
    _run(attempts.failed(unavailable))
    attempts.begin()
    _run(attempts.failed(unavailable))
    attempts.begin()
    with pytest.raises(Unavailable) as info:
        _run(attempts.failed(unavailable))
    assert info.value.details["attempts"] == 3


def test_attempts_do_not_retry_other_errors() -> None:
    attempts = Attempts(RetryPolicy(), 10.0)
    attempts.begin()
    with pytest.raises(NotFoundError) as info:
        _run(attempts.failed(GRPCError(Status.NOT_FOUND, "gone")))
    assert info.value.details["attempts"] == 1
    with pytest.raises(KeyError):
        _run(attempts.failed(KeyError("bug")))
    with pytest.raises(KeyError):
        attempts.give_up(KeyError("bug"))
    with pytest.raises(NotFoundError):
        attempts.give_up(GRPCError(Status.NOT_FOUND, "gone"))


def test_attempts_respect_the_deadline() -> None:
    clock = FakeClock()
    attempts = Attempts(RetryPolicy(initial_backoff=1.0, max_backoff=1.0), 2.0, clock=clock)
    assert attempts.begin() == 2.0
    clock.now += 1.5  # a 1 s pause would overrun the deadline: give up with the last error
    with pytest.raises(Unavailable):
        _run(attempts.failed(GRPCError(Status.UNAVAILABLE, "down")))
    clock.now += 1.0
    with pytest.raises(DeadlineExceeded, match="deadline exceeded"):
        attempts.begin()


def test_expired_deadline_names_the_last_error() -> None:
    clock = FakeClock()
    policy = RetryPolicy(initial_backoff=0.0, max_backoff=0.0, jitter=0.0)
    attempts = Attempts(policy, 1.0, clock=clock)
    attempts.begin()
    _run(attempts.failed(GRPCError(Status.UNAVAILABLE, "server restarting")))
    clock.now += 5
    with pytest.raises(DeadlineExceeded, match="server restarting") as info:
        attempts.begin()
    assert info.value.details["attempts"] == 1


def test_loop_stream_close_cancels_a_running_step() -> None:
    async def forever() -> AsyncGenerator[int, None]:
        yield 1
        await asyncio.sleep(3600)
        yield 2  # pragma: no cover

    async def scenario() -> None:
        stream = LoopStream(forever())
        assert await stream.next() == 1
        step = asyncio.ensure_future(stream.next())
        await asyncio.sleep(0.01)  # the step is now inside the generator
        await stream.close()
        assert step.cancelled()

    _run(scenario())


def test_sync_client_close_ends_abandoned_calls() -> None:
    client = SyncTaskerClient(f"127.0.0.1:{free_port()}")
    abandoned = client._loop.submit(asyncio.sleep(3600))
    client.close()
    assert abandoned.cancelled()
    with pytest.raises(RuntimeError, match="closed"):
        client._loop.submit(asyncio.sleep(0))
