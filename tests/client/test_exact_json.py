"""Integers round-trip exactly through gRPC: the client sends contexts and step results as
JSON text (`*_json`), the gateway answers them as JSON text beside the (lossy, kept for
older clients) Structs. Also: a queued request is looked up by its id over gRPC."""

from __future__ import annotations

import json

import pytest
import trio

from tasker_client import NotFoundError, TaskerClient, ValidationError
from tasker_client.proto.tasker.v1 import RequestOutcome, StepState
from tests.client.conftest import LINEAR, Stack, StackFactory

BIG = 2**60 + 1
CONTEXT = {"even_number": 2, "big": BIG, "nested": {"list": [2**63 - 1, -(2**64) - 3]},
           "ratio": 0.1, "text": "żółw"}


async def test_integers_round_trip_exactly(idle_stack: Stack) -> None:
    async with TaskerClient(idle_stack.address) as client:
        created = await client.create_task(**LINEAR, context=CONTEXT)
        assert created.task is not None
        assert json.loads(created.task.context_json) == CONTEXT
        assert float(BIG) != BIG  # a double could not have carried it
        task = await client.get_task(created.task_uuid)
        assert json.loads(task.context_json)["big"] == BIG
        context = await client.get_task_context(created.task_uuid)
        assert context.context == CONTEXT and context.context["big"] == BIG

        batch_context = {"even_number": 4, "big": BIG + 2}
        (outcome,) = await client.create_tasks([{**LINEAR, "context": batch_context}],
                                               include_tasks=True)
        assert outcome.task is not None
        assert json.loads(outcome.task.context_json) == batch_context

        steps = await client.list_steps(created.task_uuid)
        first = next(s for s in steps if s.name == "linear_step_1")
        await client.resolve_step(created.task_uuid, first.workflow_step_uuid,
                                  action="complete_manually", reason="by hand", actor="t",
                                  result={"value": BIG, "items": [BIG, BIG + 1]},
                                  metadata={"ticket": BIG})
        step = await client.get_step(created.task_uuid, first.workflow_step_uuid)
        assert step.current_state == StepState.COMPLETE
        results = json.loads(step.results_json)
        assert results["result"] == {"value": BIG, "items": [BIG, BIG + 1]}
        assert results["metadata"]["custom"]["ticket"] == BIG
        context = await client.get_task_context(created.task_uuid)
        assert context.step_results["linear_step_1"]["result"]["items"] == [BIG, BIG + 1]

        with pytest.raises(ValidationError):
            await client.create_task(**LINEAR, context={"bad": float("nan")})


async def test_look_up_a_queued_request(start_stack: StackFactory) -> None:
    async with start_stack(worker=False, ingestion=False) as stack, \
            TaskerClient(stack.address) as client:
        queued = await client.create_task(**LINEAR, context={"even_number": 2}, wait=False)
        with pytest.raises(NotFoundError, match="no outcome recorded"):
            await client.get_task_request_outcome(queued.request_id)
        with pytest.raises(ValidationError, match="request_id"):
            await client.get_task_request_outcome("not a valid id!")
    async with start_stack(worker=False) as stack, TaskerClient(stack.address) as client:
        with trio.fail_after(20):
            while True:
                try:
                    outcome = await client.get_task_request_outcome(queued.request_id)
                    break
                except NotFoundError:
                    await trio.sleep(0.05)
        assert outcome.outcome == RequestOutcome.CREATED and outcome.task_uuid
        task = await client.get_task(outcome.task_uuid)
        assert json.loads(task.context_json) == {"even_number": 2}


def test_cli_json_prints_the_exact_values() -> None:
    from tasker_cli.jsonout import jsonable
    from tasker_client.proto.google.protobuf import Struct
    from tasker_client.proto.tasker.v1 import Step, Task

    task = Task(task_uuid="t", context=Struct.from_dict({"big": float(BIG)}),
                context_json=json.dumps({"big": BIG}))
    printed = jsonable(task)
    assert printed["context"] == {"big": BIG} and "context_json" not in printed
    old_gateway = jsonable(Task(task_uuid="t", context=Struct.from_dict({"n": 2})))
    assert old_gateway["context"] == {"n": 2}
    step = jsonable(Step(results_json=json.dumps({"result": {"v": BIG}})))
    assert step["results"] == {"result": {"v": BIG}} and step["inputs"] is None
