"""Payload decoders and the queue's poison checks reject values the database connection could
not decode (`Undecodable`) and values nested too deep, with a ContractError (or a reason)
naming the field; values within the bounds pass."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import uuid4

import pytest

from tasker_shared.contracts import messages as m
from tasker_shared.contracts.fields import MESSAGE_MAX_DEPTH
from tasker_shared.domain.limits import DEFAULT_MAX_DEPTH, Undecodable
from tasker_shared.errors import ContractError
from tasker_shared.queue.poison import headers_problem, message_problem

STEP = {"task_uuid": str(uuid4()), "step_uuid": str(uuid4()), "correlation_id": str(uuid4())}
DECODERS: list[tuple[Callable[[Any], Any], str, dict[str, Any]]] = [
    (m.decode_step_message, "StepMessage", STEP),
    (m.decode_task_request_message, "TaskRequestMessage",
     {"request_id": "r", "task_request": {"name": "n"}}),
    (m.decode_finalization_request, "FinalizationRequest", {"task_uuid": str(uuid4())}),
    (m.decode_step_execution_result, "StepExecutionResult",
     {"step_uuid": str(uuid4()), "success": True}),
    (m.decode_task_request, "TaskRequest", {"name": "n"}),
    (m.decode_task_request_outcome, "TaskRequestOutcome",
     {"request_id": "r", "outcome": "invalid"}),
]


def nested(depth: int) -> Any:
    """A JSON value of exactly `depth` levels: {"k": {"k": ... {} }}."""
    value: dict[str, Any] = {}
    for _ in range(depth - 1):
        value = {"k": value}
    return value


@pytest.mark.parametrize(("decode", "name", "valid"), DECODERS)
def test_decoders_reject_undecodable_and_too_deep(
        decode: Callable[[Any], Any], name: str, valid: dict[str, Any]) -> None:
    decode(valid)
    with pytest.raises(ContractError, match="undecodable JSON \\(JSON nested too deeply"):
        decode(Undecodable("JSON nested too deeply to decode"))
    with pytest.raises(ContractError) as deep:
        decode({**valid, "extra": nested(MESSAGE_MAX_DEPTH)})
    assert deep.value.details == {"field": f"{name}.extra.k.k"}
    assert f"nests deeper than {MESSAGE_MAX_DEPTH} levels" in str(deep.value)
    decode({**valid, "extra": nested(MESSAGE_MAX_DEPTH - 1)})  # the whole payload: at the bound


def test_an_undecodable_field_is_named() -> None:
    with pytest.raises(ContractError) as err:
        m.decode_task_request_message(
            {"request_id": "r", "task_request": Undecodable("invalid JSON: x")})
    assert err.value.details == {"field": "TaskRequestMessage.task_request"}
    assert "undecodable JSON (invalid JSON: x)" in str(err.value)


def test_a_context_at_the_entry_bound_fits_in_its_message() -> None:
    """A context as deep as an entry point accepts (DEFAULT_MAX_DEPTH) is not poison once
    wrapped in its queue message."""
    message = m.decode_task_request_message({"request_id": "r", "task_request": {
        "name": "n", "context": nested(DEFAULT_MAX_DEPTH)}})
    assert message.task_request.context["k"]


def test_the_path_names_array_positions() -> None:
    with pytest.raises(ContractError) as err:
        m.decode_step_message({**STEP, "junk": [[1], [nested(MESSAGE_MAX_DEPTH)]]})
    assert err.value.details == {"field": "StepMessage.junk[1][0]"}


@pytest.mark.parametrize(("body", "headers", "problem"), [
    ({}, None, None),
    ({}, {"traceparent": "00-x"}, None),
    ({}, nested(DEFAULT_MAX_DEPTH), None),
    (Undecodable("JSON nested too deeply to decode"), None,
     "undecodable body: JSON nested too deeply to decode"),
    ({}, Undecodable("invalid JSON: y"), "undecodable headers: invalid JSON: y"),
    ({}, [1], "undecodable headers: expected an object, got array"),
    ({}, nested(DEFAULT_MAX_DEPTH + 1),
     f"undecodable headers: nested deeper than {DEFAULT_MAX_DEPTH} levels"),
])
def test_message_problem(body: Any, headers: Any, problem: str | None) -> None:
    assert message_problem(body, headers) == problem
    if not isinstance(body, Undecodable):
        assert headers_problem(headers) == problem
