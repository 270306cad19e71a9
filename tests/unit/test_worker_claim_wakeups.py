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


async def test_a_notification_during_a_chained_claim_waits_for_it() -> None:
    """Notified while a record claims from the queue in its own transaction: decided when
    that claim returns, against what the worker then holds (the record usually claimed the
    very messages it enqueued and announced); other queues are not held back."""
    for claimed, wanted in (({7: claimed_step("q", 7)}, False), ({}, True)):
        held: dict[int, ClaimedStep] = {}
        scheduler = _scheduler()
        claim = ClaimFn(scheduler, "q", held)
        assert scheduler.begin_chain("q", 1) == 1
        assert scheduler.chaining("q") and not scheduler.chaining("other")
        await claim([7], 50)
        await claim([7], 50)  # parked once
        await ClaimFn(scheduler, "other", held)([3], 50)
        assert list(scheduler._line) == ["other"]  # only the queue without a chain waits
        held.update(claimed)  # the record's claim returned: its steps are handed over
        scheduler.end_chain("q", unused=1 - len(claimed))
        assert ("q" in scheduler._line) is wanted, claimed
        assert not scheduler.chaining("q")


async def test_parked_notifications_wait_for_every_chain_of_the_queue() -> None:
    scheduler = _scheduler()
    claim = ClaimFn(scheduler, "q", {})
    assert scheduler.begin_chain("q", 1) and scheduler.begin_chain("q", 1)
    await claim([9], 50)
    scheduler.end_chain("q", unused=1)
    assert scheduler.waiting == 0 and scheduler.chaining("q")  # one record still claims
    scheduler.end_chain("q", unused=1)
    assert scheduler.waiting == 1  # message 9 is not held: the queue is claimed from
    fired: list[bool] = []
    scheduler.after_chains("q", lambda: fired.append(True))  # no chain: at once
    assert fired == [True]
