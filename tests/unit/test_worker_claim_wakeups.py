"""What wakes the worker's claims: a notification only of messages the worker already holds
(a record claimed them in its own transaction) puts nothing in line; any other wake-up does.
Pure logic: the consumer and the scheduler with in-memory stand-ins for the claims."""

from __future__ import annotations

import json

import trio
import trio.testing

from tasker_shared.queue.consumer import QueueConsumer
from tasker_shared.runtime.settings import DeploymentMode, QueueSettings
from tasker_worker.runtime.claiming import ClaimScheduler
from tasker_worker.runtime.claims import ClaimedStep
from tasker_worker.runtime.dispatcher import ClaimFn
from tests.unit.worker_support import claimed_step


async def _nothing(queue: str, limit: int) -> list[ClaimedStep]:
    return []


def _scheduler() -> ClaimScheduler:
    return ClaimScheduler(capacity=4, batch_size=50, claim=_nothing, on_claimed=lambda s: None)


async def test_a_notification_of_held_messages_claims_nothing() -> None:
    held = {7: claimed_step("q", 7), 8: claimed_step("other", 8)}
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
