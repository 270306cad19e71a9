"""Fair claiming across a worker's namespace queues: one scheduler decides which queue is
claimed from next and how much of the free capacity that claim may reserve."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable

import structlog
import trio

from tasker_worker.runtime.claims import ClaimedStep

log = structlog.get_logger("tasker.worker")

ClaimCall = Callable[[str, int], Awaitable[list[ClaimedStep]]]

CLAIMERS = 2  # claims in flight at once (each holds a database connection while it runs)


class ClaimScheduler:
    """Queues whose consumer was woken (a notification, a timer, the fallback poll) wait in
    line; while capacity is free the scheduler claims for the queue in line that was served
    least recently, at most `CLAIMERS` claims at a time and at most one per queue.

    Why no step waits unclaimed while capacity is free, by construction: a woken queue stays
    in line until a claim from it returns fewer steps than it asked for (the queue had no
    more visible messages when that claim looked), and a queue woken again while its claim
    runs is put back in line. The line is served whenever capacity is free, and a claim
    gives back what it reserved and did not use the moment it returns. (A message the claim
    sets aside or deletes, poison or stale, uses up part of the claim's share: the messages
    behind it wait for the queue's next wake-up, at most the fallback poll interval.)

    Fairness: a claim may reserve only its share of the free capacity (the free slots
    divided among the queues in line), and the queue served least recently goes first: a
    backlog in one namespace (back in line after every filled claim) never takes a slot
    that another waiting namespace could have; backlogs share the slots round robin."""

    def __init__(self, *, capacity: int, batch_size: int, claim: ClaimCall,
                 on_claimed: Callable[[list[ClaimedStep]], object],
                 on_outcome: Callable[[str, Exception | None], None] | None = None,
                 retry_pause_seconds: float = 1.0) -> None:
        self.capacity = capacity
        self.batch_size = batch_size
        self.free = capacity
        self.claims = 0
        self.failed_claims = 0
        self._claim = claim
        self._on_claimed = on_claimed
        self._on_outcome = on_outcome  # (queue, None) after a claim, (queue, error) if failed
        self._retry_pause = retry_pause_seconds
        self._line: dict[str, None] = {}  # insertion order breaks ties of `_served`
        self._claiming: set[str] = set()
        self._served: dict[str, int] = {}  # queue -> when its last claim started (a serial)
        self._serial = 0
        self._changed = trio.Event()
        self._stopping = False
        self._paused_until = 0.0  # after a failed claim, every queue waits until then
        self._chains: dict[str, int] = {}  # queue -> records claiming in their own transaction
        self._after_chains: dict[str, list[Callable[[], None]]] = {}
        self._nursery: trio.Nursery | None = None  # while `run` runs: where claims start
        self._queues: set[str] = set()  # the queues this worker serves (`serve`)

    def serve(self, queue: str) -> None:
        """`queue` is one of the worker's queues (a worker with one claims as it is woken)."""
        self._queues.add(queue)

    @property
    def waiting(self) -> int:
        """Queues in line for a claim."""
        return len(self._line)

    def want(self, queue: str) -> None:
        """Work may be waiting on `queue`: put it in line (it keeps its place if there)."""
        if self._stopping:
            return
        self._line[queue] = None
        if self._queues == {queue} and self._nursery is not None:
            # The worker's only queue: nothing to share out, so its claim starts in the
            # caller's turn, not in `run`'s (one task switch less between a notification and
            # its claim). `_next` still says whether one may start (free slots, no pause).
            self._pump()
        else:
            self._changed.set()  # `run` shares the slots among every queue woken this turn

    def release(self, count: int) -> None:
        """`count` claimed steps are finished (recorded or abandoned): their slots are free."""
        self.free += count
        self._changed.set()  # `run` claims for the slots freed this turn together

    def begin_chain(self, queue: str, want: int) -> int:
        """How many steps may a record claim from `queue` in its own transaction (0: none)?
        Only while no queue waits in line (those are served first, fairly), at most `want`
        and the free slots, which it reserves; a claim from `queue` in flight takes other
        messages (SKIP LOCKED). `end_chain` when it returns, with the reserved slots its claim
        did not use (until then `run` does not return, so the steps it claims still reach
        executors)."""
        if self._stopping or self._line or trio.current_time() < self._paused_until:
            return 0
        share = min(want, self.free, self.batch_size)
        if share <= 0:
            return 0
        self.free -= share
        self._chains[queue] = self._chains.get(queue, 0) + 1
        return share

    def end_chain(self, queue: str, unused: int) -> None:
        """A record's claim from `queue` returned (its steps handed over) with `unused` of
        the slots it reserved; once no record claims from `queue`, what waited for that
        (`after_chains`) runs."""
        left = self._chains[queue] - 1
        if left:
            self._chains[queue] = left
        else:
            del self._chains[queue]
        self.free += unused
        self._changed.set()
        if not left:
            for callback in self._after_chains.pop(queue, []):
                callback()

    def chaining(self, queue: str) -> bool:
        """Is a record claiming from `queue` in its own transaction right now?"""
        return queue in self._chains

    def after_chains(self, queue: str, callback: Callable[[], None]) -> None:
        """Call `callback` once no record claims from `queue` any more (now if none does)."""
        if queue in self._chains:
            self._after_chains.setdefault(queue, []).append(callback)
        else:
            callback()

    def stop(self) -> None:
        """Start no more claims; `run` returns once the claims in flight have returned."""
        self._stopping = True
        self._line.clear()
        self._changed.set()

    def _next(self) -> tuple[str, int] | None:
        if (self._stopping or self.free <= 0 or len(self._claiming) >= CLAIMERS
                or trio.current_time() < self._paused_until):
            return None
        eligible = [q for q in self._line if q not in self._claiming]
        if not eligible:
            return None
        share = min(self.batch_size, -(-self.free // len(eligible)))
        queue = min(eligible, key=lambda q: self._served.get(q, 0))  # ties: first in line
        del self._line[queue]
        self._serial += 1
        self._served[queue] = self._serial
        return queue, share

    def _pump(self) -> None:
        """Start every claim `_next` allows now (freed slots wait for `run`, which claims for
        all the slots freed in one turn together)."""
        nursery = self._nursery
        assert nursery is not None, "claims start only while `run` runs"
        while (pick := self._next()) is not None:
            queue, share = pick
            self._claiming.add(queue)
            self.free -= share
            nursery.start_soon(self._claim_from, queue, share)

    async def run(self) -> None:
        """Claim until stopped; returns when no claim is in flight any more."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            try:
                while True:
                    self._changed = trio.Event()  # stop, a pause, a claim's end set it
                    self._pump()
                    if self._stopping and not self._claiming and not self._chains:
                        return
                    paused = self._paused_until > trio.current_time()
                    with trio.move_on_at(self._paused_until if paused else math.inf):
                        await self._changed.wait()
            finally:
                self._nursery = None

    async def _claim_from(self, queue: str, share: int) -> None:
        try:
            try:
                steps = await self._claim(queue, share)
            except BaseException:
                self.free += share
                raise
        except Exception as exc:
            self.failed_claims += 1
            log.warning("claim_failed", queue=queue, error=str(exc))
            if self._on_outcome is not None:
                self._on_outcome(queue, exc)
            # Likely the database: pause all claims (no busy retry), then try every queue.
            self._paused_until = trio.current_time() + self._retry_pause
            self.want(queue)  # the messages are still there
        else:
            self.claims += 1
            self.free += share - len(steps)
            if self._on_outcome is not None:
                self._on_outcome(queue, None)
            if steps:
                self._on_claimed(steps)
            if len(steps) >= share:  # filled: more may be waiting
                self.want(queue)
        finally:
            self._claiming.discard(queue)
            self._changed.set()
