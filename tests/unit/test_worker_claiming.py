"""The worker's claim scheduler (pure logic: queues simulated in memory, Trio's mock clock):
free capacity is always offered to the queues in line, fairly."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import trio
import trio.lowlevel
import trio.testing

from tasker_worker.runtime.claiming import CLAIMERS, ClaimScheduler
from tasker_worker.runtime.claims import ClaimedStep
from tests.unit.worker_support import claimed_step


class Queues:
    """Visible messages per queue; a claim takes the oldest, after `latency` seconds."""

    def __init__(self, latency: float = 0.002) -> None:
        self.visible: dict[str, list[int]] = {}
        self.claimed: list[ClaimedStep] = []
        self.calls: list[tuple[str, int]] = []
        self.latency = latency
        self.fail_next = 0
        self._ids = 0

    def send(self, queue: str, count: int = 1) -> None:
        for _ in range(count):
            self._ids += 1
            self.visible.setdefault(queue, []).append(self._ids)

    async def claim(self, queue: str, limit: int) -> list[ClaimedStep]:
        self.calls.append((queue, limit))
        await trio.sleep(self.latency)
        if self.fail_next:
            self.fail_next -= 1
            raise ConnectionError("database went away")
        ids = self.visible.get(queue, [])
        taken, self.visible[queue] = ids[:limit], ids[limit:]
        return [claimed_step(queue, i) for i in taken]

    def on_claimed(self, steps: list[ClaimedStep]) -> None:
        self.claimed.extend(steps)

    def claimed_from(self, queue: str) -> int:
        return sum(1 for s in self.claimed if s.queue == queue)


@pytest.fixture
async def running() -> AsyncIterator[tuple[ClaimScheduler, Queues]]:
    """A scheduler with 10 slots over simulated queues (tests take `autojump_clock`:
    pytest-trio runs a test under the clock only when the test itself asks for it)."""
    queues = Queues()
    scheduler = ClaimScheduler(capacity=10, batch_size=50, claim=queues.claim,
                               on_claimed=queues.on_claimed, retry_pause_seconds=1.0)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(scheduler.run)
        yield scheduler, queues
        scheduler.stop()


async def test_a_message_among_24_idle_queues_is_claimed_at_once(
        running: tuple[ClaimScheduler, Queues], autojump_clock: trio.testing.MockClock) -> None:
    """Every queue is polled at the same instant (synchronised fallback polls); only the
    last has a message. Nothing is refused: the message is claimed within one round of
    empty claims, with all capacity free again afterwards."""
    scheduler, queues = running
    queues.send("q23")
    for i in range(24):
        scheduler.want(f"q{i:02d}")
    await trio.sleep(24 * queues.latency / CLAIMERS + 0.01)
    assert queues.claimed_from("q23") == 1
    assert scheduler.free == 9 and scheduler.waiting == 0
    assert {q for q, _ in queues.calls} == {f"q{i:02d}" for i in range(24)}


async def test_unused_reservation_is_free_for_the_next_queue_at_once(
        running: tuple[ClaimScheduler, Queues], autojump_clock: trio.testing.MockClock) -> None:
    """An empty claim reserving all capacity does not make the next queue wait for a step
    to finish: its reservation comes back when it returns."""
    scheduler, queues = running
    scheduler.want("idle")
    await trio.lowlevel.checkpoint()  # the idle claim is in flight with every free slot
    queues.send("busy", 3)
    scheduler.want("busy")
    await trio.sleep(0.1)
    assert queues.claimed_from("busy") == 3
    assert scheduler.free == 7


async def test_backlog_cannot_starve_another_queue(
        running: tuple[ClaimScheduler, Queues], autojump_clock: trio.testing.MockClock) -> None:
    """A backlog holds every slot; a message for another queue takes the very next slot
    that frees up, and slots are then shared between the two."""
    scheduler, queues = running
    queues.send("backlog", 1000)
    scheduler.want("backlog")
    await trio.sleep(0.1)
    assert queues.claimed_from("backlog") == 10 and scheduler.free == 0
    queues.send("other")
    scheduler.want("other")
    await trio.sleep(0.1)
    assert queues.claimed_from("other") == 0  # nothing free yet
    scheduler.release(1)
    await trio.sleep(0.1)
    assert queues.claimed_from("other") == 1
    assert queues.claimed_from("backlog") == 10
    scheduler.release(1)
    await trio.sleep(0.1)
    assert queues.claimed_from("backlog") == 11


async def test_backlogs_share_the_slots_round_robin(
        running: tuple[ClaimScheduler, Queues], autojump_clock: trio.testing.MockClock) -> None:
    scheduler, queues = running
    for name in ("a", "b", "c"):
        queues.send(name, 100)
        scheduler.want(name)
    await trio.sleep(0.1)
    first = [queues.claimed_from(name) for name in ("a", "b", "c")]
    assert sum(first) == 10 and min(first) >= 1, first  # the free slots, shared out
    for _ in range(30):
        scheduler.release(1)
        await trio.sleep(0.05)
    then = [queues.claimed_from(name) - n for name, n in zip("abc", first, strict=True)]
    assert then == [10, 10, 10]  # each slot that frees up goes to the next in turn


async def test_a_queue_woken_during_its_claim_is_claimed_again(
        running: tuple[ClaimScheduler, Queues], autojump_clock: trio.testing.MockClock) -> None:
    scheduler, queues = running
    queues.latency = 0.5
    scheduler.want("q")
    await trio.sleep(0.1)  # the claim looks at an empty queue...
    queues.send("q")  # ...while a message arrives and its notification wakes the queue
    scheduler.want("q")
    await trio.sleep(2)
    assert queues.claimed_from("q") == 1


async def test_a_failed_claim_pauses_claims_then_retries(
        running: tuple[ClaimScheduler, Queues], autojump_clock: trio.testing.MockClock) -> None:
    scheduler, queues = running
    queues.fail_next = 1
    queues.send("q")
    scheduler.want("q")
    await trio.sleep(0.5)
    assert queues.claimed_from("q") == 0 and scheduler.failed_claims == 1
    assert scheduler.free == 10  # the failed claim's reservation is back
    await trio.sleep(1.0)
    assert queues.claimed_from("q") == 1


async def test_stop_waits_for_claims_in_flight(autojump_clock: trio.testing.MockClock) -> None:
    queues = Queues(latency=1.0)
    queues.send("q")
    scheduler = ClaimScheduler(capacity=2, batch_size=50, claim=queues.claim,
                               on_claimed=queues.on_claimed)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(scheduler.run)
        scheduler.want("q")
        await trio.sleep(0.5)
        scheduler.stop()
        scheduler.want("other")  # ignored once stopped
    assert queues.claimed_from("q") == 1 and [q for q, _ in queues.calls] == ["q"]
    assert trio.current_time() >= 1.0


async def test_a_record_chains_a_claim_only_when_no_queue_waits(
        running: tuple[ClaimScheduler, Queues], autojump_clock: trio.testing.MockClock) -> None:
    """A record may claim in its own transaction only while no queue waits in line (those
    are served first, fairly); a claim running for its queue does not stop it."""
    scheduler, queues = running
    free = scheduler.free
    assert scheduler.begin_chain("q", 3) == 3  # reserves three slots
    assert scheduler.free == free - 3
    scheduler.end_chain("q", unused=1)  # two steps claimed: they keep their slots
    assert scheduler.free == free - 2
    scheduler.release(2)  # their handlers returned
    assert scheduler.free == free
    assert scheduler.begin_chain("q", free + 5) == free  # no more than the free slots
    assert scheduler.free == 0
    assert scheduler.begin_chain("q", 1) == 0  # none left to reserve
    scheduler.end_chain("q", unused=free)
    assert scheduler.free == free
    queues.latency = 1.0
    for queue in ("a", "b", "c"):
        queues.send(queue)
        scheduler.want(queue)
    await trio.sleep(0.1)  # CLAIMERS claims run (a, b); c waits in line
    assert CLAIMERS == 2 and scheduler.waiting == 1
    assert not scheduler.begin_chain("q", 1)  # a queue waits: it goes first
    await trio.sleep(1.0)  # a and b returned; c's claim runs, nothing waits
    assert scheduler.waiting == 0
    scheduler.release(len(queues.claimed))  # the claimed steps' handlers returned
    assert scheduler.begin_chain("c", 1)  # beside c's claim: SKIP LOCKED splits the messages
    scheduler.end_chain("c", unused=1)
    scheduler.stop()
    assert not scheduler.begin_chain("a", 1)  # stopping: no new claims of any kind


async def test_stop_waits_for_chained_claims(autojump_clock: trio.testing.MockClock) -> None:
    """`run` returns only after every record that began a chained claim ended it: the steps
    such a record claims still reach the executors."""
    queues = Queues()
    scheduler = ClaimScheduler(capacity=2, batch_size=50, claim=queues.claim,
                               on_claimed=queues.on_claimed)
    returned_at: list[float] = []

    async def run() -> None:
        await scheduler.run()
        returned_at.append(trio.current_time())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(run)
        await trio.sleep(0.1)
        assert scheduler.begin_chain("q", 1)
        scheduler.stop()
        await trio.sleep(1.0)
        assert returned_at == []
        scheduler.end_chain("q", unused=1)
    assert returned_at and returned_at[0] >= 1.1


async def test_a_worker_with_one_queue_starts_its_claim_in_the_waking_turn(
        autojump_clock: trio.testing.MockClock) -> None:
    """With one queue there is nothing to share out: the wake-up itself starts the claim
    (its slots are reserved before the waker's turn ends); with several queues the
    scheduler's own turn shares the slots among all woken in the same turn."""
    for served in (["q"], ["q", "r"]):
        queues = Queues()
        queues.send("q")
        scheduler = ClaimScheduler(capacity=4, batch_size=50, claim=queues.claim,
                                   on_claimed=queues.on_claimed)
        for queue in served:
            scheduler.serve(queue)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(scheduler.run)
            await trio.sleep(0.1)
            scheduler.want("q")
            reserved_at_once = scheduler.free < 4
            await trio.sleep(0.1)
            assert queues.claimed_from("q") == 1
            scheduler.stop()
        assert reserved_at_once == (served == ["q"]), served
