"""The sync and asyncio flavours against the real in-process gateway (Trio: test_client_gateway)."""

from __future__ import annotations

import asyncio
import datetime
import json
import sys
import textwrap
import uuid
from typing import Any

import pytest
import trio

from tasker_client import (
    AioTaskerClient,
    DeadlineExceeded,
    NotFoundError,
    SyncTaskerClient,
    TaskerClient,
    TransitionRejected,
    ValidationError,
)
from tasker_client.proto.tasker.v1 import StatusUpdateType, TaskState
from tests.client.conftest import LINEAR, Stack, StackFactory

# Run in a fresh interpreter: the host's own asyncio (default policy, asyncio.run) drives the
# client, and nothing else is imported behind its back.
ASYNCIO_APP = textwrap.dedent("""
    import asyncio, json, sys, uuid
    policy = asyncio.get_event_loop_policy()
    from tasker_client import AioTaskerClient, DeadlineExceeded, NotFoundError
    ADDRESS, LINEAR = sys.argv[1], json.loads(sys.argv[2])

    async def main():
        async with AioTaskerClient(ADDRESS) as client:
            created = await asyncio.gather(*(
                client.create_task(**LINEAR, context={"even_number": 2 * (i + 1)})
                for i in range(5)))
            updates = [u.task_state async for u in client.watch_task(created[0].task_uuid)]
            tasks = await asyncio.gather(*(client.get_task(c.task_uuid) for c in created))
            try:
                await client.get_task(uuid.uuid4())
            except NotFoundError as exc:
                missing = type(exc).__name__
            idle = await client.create_task(**LINEAR, context={"even_number": 100})
            try:  # asyncio.timeout cancels a watch that would outlive it
                async with asyncio.timeout(0.3):
                    async for _ in client.watch_task(idle.task_uuid, call_timeout=None):
                        await asyncio.sleep(60)
            except TimeoutError:
                timed_out = True
            health = (await client.health()).status
        return {
            "created": [c.created for c in created], "last_update": int(updates[-1]),
            "first_state": int(tasks[0].status), "fetched": len(tasks), "missing": missing,
            "timed_out": timed_out, "health": health,
            "loop": type(asyncio.get_running_loop()).__module__,
            "policy_unchanged": asyncio.get_event_loop_policy() is policy,
        }

    result = asyncio.run(main())
    result["imported"] = sorted({m.split(".")[0] for m in sys.modules} & {
        "trio", "trio_asyncio", "psycopg", "quart", "hypercorn", "tasker_shared"})
    print(json.dumps(result))
""")


async def test_asyncio_app_in_a_fresh_interpreter(stack: Stack) -> None:
    proc = await trio.run_process(
        [sys.executable, "-c", ASYNCIO_APP, stack.address, json.dumps(LINEAR)],
        capture_stdout=True, capture_stderr=True, check=False,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    result = json.loads(proc.stdout)
    assert result == {
        "created": [True] * 5, "last_update": int(TaskState.COMPLETE),
        "first_state": int(TaskState.COMPLETE), "fetched": 5,
        "missing": "NotFoundError", "timed_out": True, "health": "ok",
        "loop": "asyncio.unix_events", "policy_unchanged": True, "imported": [],
    }


async def test_asyncio_client_and_local_validation(stack: Stack) -> None:
    async def use() -> None:
        async with AioTaskerClient(stack.address) as client:
            await client.open()  # already open: nothing happens
            assert (await client.health()).status == "ok"
            since = datetime.datetime.now(datetime.UTC) - datetime.timedelta(hours=1)
            page = await client.list_tasks(created_after=since, created_before=None)
            assert page.tasks == ()
            with pytest.raises(ValidationError):
                await client.create_task("")
            with pytest.raises(ValidationError):
                await client.list_tasks(page=0)
            with pytest.raises(ValidationError):
                await client.list_tasks(per_page=101)
            with pytest.raises(ValidationError):
                await client.dlq_list(limit=0)
        await client.aclose()  # idempotent
        with pytest.raises(RuntimeError, match="not open"):
            await client.health()
        with pytest.raises(RuntimeError, match="not open"):
            await anext(client.watch_task(uuid.uuid4()))

    async def unopened() -> None:
        with pytest.raises(RuntimeError, match="not open"):
            await AioTaskerClient(stack.address).get_task(uuid.uuid4())

    def run() -> None:
        # A plain selector loop: other tests in this process may have installed trio-asyncio.
        with asyncio.Runner(loop_factory=asyncio.SelectorEventLoop) as runner:
            runner.run(use())
            runner.run(unopened())

    await trio.to_thread.run_sync(run)
    client = TaskerClient(stack.address)
    await client.__aexit__(None, None, None)  # never opened: nothing to close


async def test_sync_client_from_a_thread(stack: Stack) -> None:
    def use() -> list[Any]:
        with SyncTaskerClient(stack.address) as client:
            assert client.config.endpoint.host == "127.0.0.1"
            created = client.create_task(**LINEAR, context={"even_number": 2})
            updates = list(client.watch_task(created.task_uuid, include_steps=True))
            task = client.get_task(created.task_uuid)
            assert task.status == TaskState.COMPLETE
            assert client.health().status == "ok"
            assert client.list_tasks(namespace="examples").tasks
            assert len(client.list_steps(created.task_uuid)) == 4
            step = client.list_steps(created.task_uuid)[0]
            assert client.get_step(created.task_uuid, step.workflow_step_uuid).name == step.name
            assert client.step_audit(created.task_uuid, step.workflow_step_uuid)
            assert client.list_templates().templates
            assert client.get_template("examples", "linear_workflow", "1.0.0").name
            assert client.get_task_context(created.task_uuid).context == {"even_number": 2}
            assert client.get_task_summary(created.task_uuid).task_uuid == created.task_uuid
            with pytest.raises(TransitionRejected):
                client.cancel_task(created.task_uuid)
            with pytest.raises(NotFoundError):
                client.dlq_get(created.task_uuid)
            with pytest.raises(ValidationError):  # checked before any call
                client.get_task("not-a-uuid")
            assert client.readiness().status
            assert client.detailed_health().status
            assert client.performance(hours=1).total_tasks >= 1
            assert client.bottlenecks(limit=3).recommendations is not None
            assert client.dlq_list(limit=5) == ()
            assert isinstance(client.dlq_stats(), tuple)
            assert client.dlq_investigation_queue(limit=5) == ()
            assert isinstance(client.dlq_staleness(limit=5), tuple)
            # Closing a watch early ends the stream.
            stream = client.watch_task(created.task_uuid)
            next(stream)
            stream.close()
        with pytest.raises(RuntimeError, match="closed"):
            client.health()
        client.close()  # idempotent
        return updates

    updates = await trio.to_thread.run_sync(use)
    assert updates[-1].update_type in {StatusUpdateType.TASK_COMPLETE,
                                       StatusUpdateType.TASK_STATE_CHANGE}


async def test_sync_client_shared_by_threads_and_deadline(start_stack: StackFactory) -> None:
    async with start_stack(worker=False, ingestion=False) as running:
        client = SyncTaskerClient(running.address)

        def call() -> str:
            with pytest.raises(DeadlineExceeded):  # nobody ingests: the gateway keeps waiting
                client.create_task(**LINEAR, context={"even_number": 2},
                                   wait_timeout=5.0, call_timeout=0.3)
            return str(client.health().status)

        results: list[str] = []

        async def in_thread() -> None:
            results.append(await trio.to_thread.run_sync(call))

        try:
            async with trio.open_nursery() as nursery:
                for _ in range(3):
                    nursery.start_soon(in_thread)
        finally:
            await trio.to_thread.run_sync(client.close)
    assert results == ["ok"] * 3
