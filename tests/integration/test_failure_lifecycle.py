"""A task's life after a failed step (issue 16 items 2, 3, 4, 6), with every service and the
gateway in-process: a permanent failure settles the task blocked by failures with a DLQ
investigation, the staleness monitor calls it stale and task watches end; exhausted retries
end it in error; operators recover both (reset for retry, complete manually) through the
gateway's use cases. Also: steps created at run time get the environment's retry settings,
an analyser with nothing to batch and no worker template completes its task, and
`retry.max_attempts: 0` means one attempt and no retry."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
import trio

from tasker_gateway.auth import ANONYMOUS
from tasker_gateway.models.tasks import StatusUpdate, UpdateType
from tasker_gateway.usecases.steps import StepAction, resolve_step
from tasker_gateway.usecases.watch import open_watch
from tasker_shared.contracts.generated.tasker import v1 as pb
from tasker_worker.examples import templates_dir
from tests.gateway.conftest import Gateway, gateway_settings, grpc_client, running_gateway
from tests.integration import failure_handlers
from tests.support import EXAMPLES, outcome, submit, wait_task

TEMPLATES = Path(__file__).parent / "templates" / "failures"
HANDLERS = "tests.integration.failure_handlers"


@pytest.fixture
async def gw(db_url: str) -> AsyncIterator[Gateway]:
    base = gateway_settings(db_url)
    worker = base.worker.model_copy(update={
        "namespaces": ["examples", "failures"], "handler_modules": [EXAMPLES, HANDLERS],
        "template_paths": [str(templates_dir()), str(TEMPLATES)]})
    async with running_gateway(db_url, pipeline=True,
                               settings=base.model_copy(update={"worker": worker})) as gateway:
        yield gateway


async def start(gw: Gateway, name: str) -> str:
    rid = submit(gw.db_url, name, {}, namespace="failures")
    out = await trio.to_thread.run_sync(outcome, gw.db_url, rid)
    assert out["outcome"] == "created", out
    return str(out["task_uuid"])


async def settle(gw: Gateway, task: str, *states: str) -> str:
    return await trio.to_thread.run_sync(
        lambda: wait_task(gw.db_url, task, states=set(states), timeout=30))


async def watch_to_the_end(gw: Gateway, task: str) -> list[StatusUpdate]:
    """Every update of a StreamTaskStatus watch, which must end by itself."""
    watch = await open_watch(gw.ctx, UUID(task), include_steps=False)
    try:
        with trio.fail_after(20):
            return [update async for update in watch]
    finally:
        watch.close()


def steps(gw: Gateway, task: str) -> dict[str, dict[str, Any]]:
    rows = gw.sql(
        "SELECT ns.name, ws.workflow_step_uuid, ws.attempts, ws.max_attempts, ws.results,"
        " tasker.get_current_step_state_v1(ws.workflow_step_uuid) AS state"
        " FROM tasker.workflow_steps ws"
        " JOIN tasker.named_steps ns ON ns.named_step_uuid = ws.named_step_uuid"
        " WHERE ws.task_uuid = %s", (task,))
    return {r["name"]: r for r in rows}


def dlq_entries(gw: Gateway, task: str) -> list[dict[str, Any]]:
    return gw.sql("SELECT dlq_reason::text AS reason, resolution_status::text AS status,"
                  " original_state, metadata, task_snapshot FROM tasker.tasks_dlq"
                  " WHERE task_uuid = %s", (task,))


async def operator(gw: Gateway, task: str, step: str, action: str, **fields: Any) -> None:
    view = await resolve_step(
        gw.ctx, UUID(task), steps(gw, task)[step]["workflow_step_uuid"],
        StepAction(action=action, reason="fixed upstream", actor="ops", **fields),
        principal=ANONYMOUS)
    assert view.previous_state.value == "error"


async def test_permanent_failure_blocks_then_reset_completes(gw: Gateway) -> None:
    task = await start(gw, "fail_then_fixed")
    updates = await watch_to_the_end(gw, task)  # opened at once: ends when the task settles
    assert updates[-1].update_type is UpdateType.TASK_ERROR
    assert updates[-1].task_state is not None
    assert updates[-1].task_state.value == "blocked_by_failures"
    assert await settle(gw, task, "blocked_by_failures") == "blocked_by_failures"
    found = steps(gw, task)
    assert (found["fragile"]["state"], found["fragile"]["attempts"]) == ("error", 1)
    assert found["after"]["state"] == "pending"

    [entry] = dlq_entries(gw, task)
    assert (entry["reason"], entry["status"], entry["original_state"]) == (
        "max_retries_exceeded", "pending", "blocked_by_failures")
    [failure] = entry["metadata"]["failures"]
    assert (failure["name"], failure["why"], failure["message"]) == (
        "fragile", "not_retryable", "card declined")
    assert entry["task_snapshot"]["current_state"] == "blocked_by_failures"
    [monitor] = gw.sql("SELECT health_status, staleness_threshold_minutes"
                       " FROM tasker.get_task_staleness_monitoring_v1() WHERE task_uuid = %s",
                       (task,))
    assert (monitor["health_status"], monitor["staleness_threshold_minutes"]) == ("stale", 0)
    async with grpc_client(gw.grpc_port) as rpc:  # StreamTaskStatus ends with the outcome
        with trio.fail_after(20):
            streamed = await rpc.stream(rpc.tasks.stream_task_status,
                                        pb.StreamTaskStatusRequest(task_uuid=task))
    assert [u.update_type for u in streamed] == [
        pb.StatusUpdateType.TASK_STATE_CHANGE, pb.StatusUpdateType.TASK_ERROR]
    assert streamed[-1].task_state is pb.TaskState.BLOCKED_BY_FAILURES

    failure_handlers.FIXED.add(task)
    await operator(gw, task, "fragile", "reset_for_retry")
    assert await settle(gw, task, "complete", "blocked_by_failures", "error") == "complete"
    found = steps(gw, task)
    assert found["fragile"]["results"]["result"] == {"charged": True}
    assert found["after"]["results"]["result"] == {"saw": ["fragile"]}
    final = await watch_to_the_end(gw, task)
    assert final[-1].update_type is UpdateType.TASK_COMPLETE


async def test_exhausted_retries_error_then_complete_manually_completes(gw: Gateway) -> None:
    task = await start(gw, "exhaust_then_fixed")
    updates = await watch_to_the_end(gw, task)
    assert updates[-1].update_type is UpdateType.TASK_ERROR
    assert await settle(gw, task, "error") == "error"
    assert steps(gw, task)["flaky"]["attempts"] == 2
    [entry] = dlq_entries(gw, task)
    assert entry["metadata"]["failures"][0]["why"] == "attempts_exhausted"

    await operator(gw, task, "flaky", "complete_manually", result={"fetched": "by hand"})
    assert await settle(gw, task, "complete", "blocked_by_failures", "error") == "complete"
    found = steps(gw, task)
    assert found["after"]["results"]["result"] == {"saw": ["flaky"]}
    row = gw.sql("SELECT complete, completed_at FROM tasker.tasks WHERE task_uuid = %s",
                 (task,))[0]
    assert row["complete"] is True and row["completed_at"] is not None
    moves = [(r["from_state"], r["to_state"]) for r in gw.sql(
        "SELECT from_state, to_state FROM tasker.task_transitions WHERE task_uuid = %s"
        " ORDER BY sort_key", (task,))]
    assert ("error", "evaluating_results") in moves  # resumed by the operator
    assert len(dlq_entries(gw, task)) == 1  # the investigation stays for the operator


async def test_errored_task_accepts_reset_for_retry(gw: Gateway) -> None:
    task = await start(gw, "exhaust_then_fixed")
    assert await settle(gw, task, "error", "complete", "blocked_by_failures") == "error"
    failure_handlers.FIXED.add(task)
    await operator(gw, task, "flaky", "reset_for_retry")
    assert await settle(gw, task, "complete", "error") == "complete"
    assert steps(gw, task)["flaky"]["attempts"] == 1  # reset, then one good attempt


async def test_runtime_created_steps_get_the_environment_overrides(gw: Gateway) -> None:
    task = await start(gw, "runtime_steps")
    assert await settle(gw, task, "complete", "blocked_by_failures", "error") == "complete"
    found = {name: row["max_attempts"] for name, row in steps(gw, task).items()}
    assert found == {"begin": 4, "choose": 4, "plan": 4,  # created with the task
                     "branch_a": 4, "work_001": 6, "work_002": 6, "gather": 4}


async def test_no_batches_without_a_worker_template_completes_the_task(gw: Gateway) -> None:
    task = await start(gw, "nothing_to_batch")
    assert await settle(gw, task, "complete", "blocked_by_failures", "error") == "complete"
    found = steps(gw, task)
    assert list(found) == ["analyze"]
    assert found["analyze"]["state"] == "complete"
    assert found["analyze"]["results"]["result"]["total_rows"] == 0


async def test_max_attempts_zero_runs_once_and_never_retries(gw: Gateway) -> None:
    task = await start(gw, "zero_attempts")
    assert await settle(gw, task, "error", "complete", "blocked_by_failures") == "error"
    found = steps(gw, task)
    assert (found["zero_ok"]["state"], found["zero_ok"]["attempts"],
            found["zero_ok"]["max_attempts"]) == ("complete", 1, 0)
    assert (found["zero_fail"]["state"], found["zero_fail"]["attempts"],
            found["zero_fail"]["max_attempts"]) == ("error", 1, 0)
    assert dlq_entries(gw, task)[0]["metadata"]["failures"][0]["why"] == "attempts_exhausted"
