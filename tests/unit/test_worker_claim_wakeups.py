"""What wakes the worker's claims: a notification only of messages the worker already holds
(a record claimed them in its own transaction) puts nothing in line; any other wake-up does.
Pure logic: the consumer and the scheduler with in-memory stand-ins for the claims."""

from __future__ import annotations

import json
import uuid

import trio
import trio.testing

from tasker_shared.queue.consumer import QueueConsumer
from tasker_shared.runtime.settings import DeploymentMode, QueueSettings
from tasker_worker.runtime.claiming import ClaimScheduler
from tasker_worker.runtime.claims import ClaimedStep
from tasker_worker.runtime.dispatcher import ClaimFn


def _step(queue: str, msg_id: int) -> ClaimedStep:
    ids = uuid.uuid4()
    return ClaimedStep(queue=queue, msg_id=msg_id, task_uuid=ids, step_uuid=uuid.uuid4(),
                       correlation_id=ids, step_name="s", attempt=1, max_attempts=1, inputs={},
                       checkpoint=None, task_context={}, namespace=queue, task_name="t",
                       task_version="1", named_task_uuid=ids, dependency_results={},
                       headers=None)


async def _nothing(queue: str, limit: int) -> list[ClaimedStep]:
    return []


def _scheduler() -> ClaimScheduler:
    return ClaimScheduler(capacity=4, batch_size=50, claim=_nothing, on_claimed=lambda s: None)


async def test_a_notification_of_held_messages_claims_nothing() -> None:
    held = {7: _step("q", 7), 8: _step("other", 8)}
    for ids, wanted in (([7], False), ([7, 9], True), ([8], True), (None, True)):
        scheduler = _scheduler()
        await ClaimFn(scheduler, "q", held)(ids, 50)
        assert (scheduler.waiting == 1) is wanted, ids


async def test_the_worker_consumer_passes_notified_ids(
        autojump_clock: trio.testing.MockClock) -> None:
    seen: list[list[int] | None] = []

    async def process(ids: list[int] | None, limit: int) -> int:
        seen.append(ids)
        return 0

    settings = QueueSettings(deployment_mode=DeploymentMode.EVENT_DRIVEN)
    plain = QueueConsumer(queue="a", process=process, settings=settings, handler_tasks=1)
    worker = QueueConsumer(queue="b", process=process, settings=settings, handler_tasks=1,
                           notified_ids=True)
    async with trio.open_nursery() as nursery:
        for consumer in (plain, worker):
            await nursery.start(consumer.run)
            await trio.sleep(0.1)  # the first look at start: a poll, passed as None
            consumer.waker.on_notification(json.dumps({"msg_id": 5}))
            await trio.sleep(0.1)
            consumer.stop()
    assert seen == [None, None, None, [5]]
