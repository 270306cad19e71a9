"""TaskerClient (Trio) against the real in-process gateway: every call, errors, retries."""

from __future__ import annotations

import asyncio
import time
import uuid
from contextlib import aclosing
from typing import Any

import pytest
import trio

from tasker_client import (
    ConflictError,
    DeadlineExceeded,
    NotFoundError,
    RetryPolicy,
    TaskerClient,
    TransitionRejected,
    Unavailable,
    ValidationError,
    from_struct,
    is_terminal,
)
from tasker_client.proto.tasker.v1 import (
    CreateTaskStatus,
    StatusUpdateType,
    StepState,
    TaskState,
)
from tasker_client.trio_client import wait_future
from tests.client.conftest import LINEAR, Stack, StackFactory, free_port

FAST_RETRY = RetryPolicy(max_attempts=50, initial_backoff=0.02, max_backoff=0.1)


async def _wait_state(client: TaskerClient, task_uuid: str, *states: TaskState) -> Any:
    with trio.fail_after(20):
        while True:
            task = await client.get_task(task_uuid)
            if task.status in states:
                return task
            await trio.sleep(0.05)


async def _calls_left_on_the_loop(client: TaskerClient) -> int:
    """How many asyncio tasks besides this probe still run on the client's loop thread."""

    async def others() -> int:
        for _ in range(200):  # cancelled calls unwind within a few loop iterations
            left = len(asyncio.all_tasks()) - 1
            if not left:
                break
            await asyncio.sleep(0.01)
        return left

    assert client._loop is not None
    return await wait_future(client._loop.submit(others()))


async def test_create_watch_and_inspect(stack: Stack) -> None:
    async with TaskerClient(stack.address) as client:
        assert (await client.health()).status == "ok"
        created = await client.create_task(**LINEAR, context={"even_number": 2},
                                           tags=["client-test"], initiator="pytest")
        assert created.created
        assert created.status == CreateTaskStatus.CREATED
        assert created.task is not None
        task_uuid = created.task_uuid
        assert task_uuid == created.task.task_uuid

        states = []
        async with aclosing(client.watch_task(task_uuid, include_steps=True)) as updates:
            async for update in updates:
                assert update.task_uuid == task_uuid
                states.append(update)
        assert states, "the stream ended without any update"
        kinds = {u.update_type for u in states}
        assert StatusUpdateType.TASK_COMPLETE in kinds
        assert StatusUpdateType.STEP_STATE_CHANGE in kinds

        task = await client.get_task(task_uuid)
        assert task.status == TaskState.COMPLETE
        assert is_terminal(task.status)
        assert from_struct(task.context) == {"even_number": 2}
        assert task.tags == ["client-test"]
        assert task.total_steps == task.completed_steps == 4

        context = await client.get_task_context(task_uuid)
        assert context.context == {"even_number": 2}
        assert context.step_results["linear_step_4"]["result"]["value"] == 2 ** 16
        summary = await client.get_task_summary(task_uuid)
        assert summary.task_uuid == task_uuid
        assert len(summary.step_summaries) == 4

        steps = await client.list_steps(task_uuid)
        assert sorted(s.name for s in steps) == [f"linear_step_{i}" for i in range(1, 5)]
        last = next(s for s in steps if s.name == "linear_step_4")
        step = await client.get_step(task_uuid, last.workflow_step_uuid)
        assert step.current_state == StepState.COMPLETE
        assert from_struct(step.results)["result"]["value"] == 2 ** 16
        audit = await client.step_audit(task_uuid, last.workflow_step_uuid)
        assert audit
        assert audit[0].success
        assert audit[0].to_state == StepState.ENQUEUED_FOR_ORCHESTRATION

        page = await client.list_tasks(namespace="examples", status="complete", per_page=10)
        assert task_uuid in {t.task_uuid for t in page.tasks}
        assert page.total_count >= 1
        assert page.page == 1
        empty = await client.list_tasks(namespace="examples", status=TaskState.CANCELLED,
                                        sort="asc")
        assert empty.tasks == ()

        with pytest.raises(TransitionRejected):
            await client.cancel_task(task_uuid, reason="too late")
        # Watching a finished task ends at once with its final state.
        final = [u async for u in client.watch_task(task_uuid)]
        assert final
        assert final[-1].task_state == TaskState.COMPLETE


async def test_errors_map_to_tasker_errors(stack: Stack) -> None:
    async with TaskerClient(stack.address) as client:
        with pytest.raises(NotFoundError):
            await client.get_task(uuid.uuid4())
        with pytest.raises(NotFoundError):
            await client.create_task("no_such_template", namespace="examples",
                                     version="1.0.0")
        with pytest.raises(ValidationError):  # the context breaks the input schema
            await client.create_task(**LINEAR, context={"even_number": "two"})
        with pytest.raises(ValidationError):  # rejected locally, before any call
            await client.get_task("not-a-uuid")
        key = f"once-{uuid.uuid4()}"
        await client.create_task(**LINEAR, context={"even_number": 2}, idempotency_key=key)
        with pytest.raises(ConflictError):
            await client.create_task(**LINEAR, context={"even_number": 2}, idempotency_key=key)


async def test_templates(stack: Stack) -> None:
    async with TaskerClient(stack.address) as client:
        catalog = await client.list_templates()
        names = {(t.namespace, t.name, t.version) for t in catalog.templates}
        assert ("examples", "linear_workflow", "1.0.0") in names
        assert "examples" in catalog.namespaces
        only = await client.list_templates(namespace="nowhere")
        assert only.templates == ()
        detail = await client.get_template("examples", "linear_workflow", "1.0.0")
        assert detail.steps[0].name == "linear_step_1"
        assert detail.steps[1].dependencies == ["linear_step_1"]
        with pytest.raises(NotFoundError):
            await client.get_template("examples", "linear_workflow", "9.9.9")


async def test_cancel_and_resolve_without_worker(idle_stack: Stack) -> None:
    async with TaskerClient(idle_stack.address) as client:
        first = await client.create_task(**LINEAR, context={"even_number": 2})
        cancelled = await client.cancel_task(first.task_uuid, reason="not needed")
        assert cancelled.status == TaskState.CANCELLED
        assert is_terminal((await client.get_task(first.task_uuid)).status)

        second = await client.create_task(**LINEAR, context={"even_number": 4})
        steps = await client.list_steps(second.task_uuid)
        step_one = next(s for s in steps if s.name == "linear_step_1")
        resolution = await client.resolve_step(
            second.task_uuid, step_one.workflow_step_uuid, action="complete_manually",
            reason="done by hand", actor="pytest", result={"value": 16}, metadata={"by": "t"},
        )
        assert resolution.step.current_state == StepState.COMPLETE
        assert resolution.previous_state != StepState.COMPLETE
        with pytest.raises(ValidationError):
            await client.resolve_step(second.task_uuid, step_one.workflow_step_uuid,
                                      action="resolve_manually", result={"x": 1})


async def test_watch_deadline_and_unary_deadline(start_stack: StackFactory) -> None:
    async with start_stack(worker=False, ingestion=False) as running, \
            TaskerClient(running.address) as client:
        started = time.monotonic()
        with pytest.raises(DeadlineExceeded):  # nobody ingests: the gateway keeps waiting
            await client.create_task(**LINEAR, context={"even_number": 2},
                                     wait_timeout=5.0, call_timeout=0.3)
        assert time.monotonic() - started < 2.0
        # Trio cancellation reaches the call running on the client's asyncio loop thread.
        with trio.move_on_after(0.3) as scope:
            await client.create_task(**LINEAR, context={"even_number": 2}, wait_timeout=5.0)
        assert scope.cancelled_caught
        assert await _calls_left_on_the_loop(client) == 0
        accepted = await client.create_task(**LINEAR, context={"even_number": 2}, wait=False)
        assert accepted.status == CreateTaskStatus.ACCEPTED
        assert not accepted.created
        assert accepted.request_id


async def test_watch_times_out_on_a_running_task(idle_stack: Stack) -> None:
    async with TaskerClient(idle_stack.address) as client:
        created = await client.create_task(**LINEAR, context={"even_number": 2})
        seen: list[Any] = []

        async def watch() -> None:
            async for update in client.watch_task(created.task_uuid, call_timeout=0.5):
                seen.append(update)

        with pytest.raises(DeadlineExceeded):
            await watch()
        assert seen, "the current state is reported first"


async def test_retries_until_the_gateway_starts(start_stack: StackFactory) -> None:
    port = free_port()
    results: list[str] = []
    answered = trio.Event()

    async def early_caller() -> None:
        async with TaskerClient(f"127.0.0.1:{port}", retry=FAST_RETRY) as client:
            results.append((await client.health()).status)
        answered.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(early_caller)
        await trio.sleep(0.3)  # the client is already failing and backing off
        async with start_stack(worker=False, grpc_port=port):
            with trio.fail_after(10):
                await answered.wait()
    assert results == ["ok"]


async def test_unavailable_after_bounded_attempts() -> None:
    closed = f"127.0.0.1:{free_port()}"
    policy = RetryPolicy(max_attempts=3, initial_backoff=0.01, max_backoff=0.02)
    async with TaskerClient(closed, retry=policy) as client:
        started = time.monotonic()
        with pytest.raises(Unavailable) as info:
            await client.health()
        assert info.value.details["attempts"] == 3
        assert "cannot reach the gateway" in info.value.message
        with pytest.raises(Unavailable):  # a stream is retried the same way
            async for _ in client.watch_task(uuid.uuid4()):
                pass  # pragma: no cover - nothing arrives
    assert time.monotonic() - started < 2.0
    # With a short deadline and a generous attempt budget the deadline ends it.
    async with TaskerClient(closed, timeout=0.3, retry=FAST_RETRY) as client:
        started = time.monotonic()
        with pytest.raises(Unavailable):
            await client.list_templates()
        assert time.monotonic() - started < 1.0


async def test_client_guards_misuse_and_cancellation_crosses_the_bridge(stack: Stack) -> None:
    client = TaskerClient(stack.address)
    with pytest.raises(RuntimeError, match="not open"):
        await client.health()
    with pytest.raises(RuntimeError, match="not open"):
        async for _ in client.watch_task(uuid.uuid4()):
            pass  # pragma: no cover
    async with client:
        with pytest.raises(RuntimeError, match="already open"):
            await client.__aenter__()
        assert (await client.readiness()).status in {"ready", "not_ready"}
        assert (await client.detailed_health()).status
        created = await client.create_task(**LINEAR, context={"even_number": 2})
        with trio.move_on_after(0.05) as scope:
            async for _ in client.watch_task(created.task_uuid):
                await trio.sleep(1)
        assert scope.cancelled_caught
        assert (await client.health()).status == "ok"
    assert client.config.endpoint.port == int(stack.address.rsplit(":", 1)[1])
    with pytest.raises(RuntimeError, match="not open"):
        await client.health()
    async with client:  # closed clients can be opened again
        assert (await client.health()).status == "ok"


async def test_analytics(stack: Stack) -> None:
    async with TaskerClient(stack.address) as client:
        created = await client.create_task(**LINEAR, context={"even_number": 2})
        await _wait_state(client, created.task_uuid, TaskState.COMPLETE)
        metrics = await client.performance(hours=1)
        assert metrics.total_tasks >= 1
        analysis = await client.bottlenecks(limit=5, min_executions=1)
        assert analysis.resource_utilization is not None


async def test_dlq_via_staleness(start_stack: StackFactory) -> None:
    staleness = {"detection_interval_seconds": 0.2, "steps_in_process_minutes": 0.002}
    async with start_stack(worker=False, staleness=staleness) as running, \
            TaskerClient(running.address) as client:
        created = await client.create_task(**LINEAR, context={"even_number": 2})
        await _wait_state(client, created.task_uuid, TaskState.ERROR)
        entry = await client.dlq_get(created.task_uuid)
        assert entry.task_uuid == created.task_uuid
        listed = await client.dlq_list(resolution_status="pending")
        assert entry.dlq_entry_uuid in {e.dlq_entry_uuid for e in listed}
        assert await client.dlq_stats()
        queue = await client.dlq_investigation_queue(limit=10)
        assert entry.dlq_entry_uuid in {e.dlq_entry_uuid for e in queue}
        assert isinstance(await client.dlq_staleness(limit=10), tuple)
        updated = await client.dlq_update(
            entry.dlq_entry_uuid, resolution_status="manually_resolved",
            resolution_notes="looked at it", resolved_by="pytest", metadata={"ticket": 7},
        )
        assert updated.resolved_by == "pytest"
        assert await client.dlq_list(resolution_status="pending") == ()
        with pytest.raises(NotFoundError):
            await client.dlq_get(uuid.uuid4())
