"""One call's budget: a deadline over all attempts and exponential backoff on UNAVAILABLE."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from typing import NoReturn

from tasker_client.config import RetryPolicy
from tasker_client.errors import DeadlineExceeded, TaskerError
from tasker_client.status import translate


class Attempts:
    """Tracks attempts and the deadline of one logical call (asyncio side)."""

    def __init__(
        self,
        policy: RetryPolicy,
        timeout: float | None,
        *,
        target: str = "gateway",
        clock: Callable[[], float] = time.monotonic,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.policy = policy
        self.target = target
        self.attempt = 0
        self._clock = clock
        self._rng = rng
        self._deadline = None if timeout is None else clock() + timeout
        self._last: TaskerError | None = None

    def begin(self) -> float | None:
        """Start an attempt: the seconds left for it (None = no deadline), or DeadlineExceeded."""
        left = None
        if self._deadline is not None:
            left = self._deadline - self._clock()
            if left <= 0:
                raise self._expired()
        self.attempt += 1
        return left

    async def failed(self, exc: Exception) -> None:
        """Sleep before the next attempt, or raise the translated error when done retrying."""
        err = translate(exc, target=self.target)
        if err is None:
            raise exc
        if not err.retryable or self.attempt >= self.policy.max_attempts:
            self._annotate(err)
            raise err from exc
        pause = max(self._backoff(), float(getattr(err, "retry_after", 0)))
        if self._deadline is not None and self._clock() + pause >= self._deadline:
            self._annotate(err)
            raise err from exc
        self._last = err
        await asyncio.sleep(pause)

    def give_up(self, exc: Exception) -> NoReturn:
        """Raise `exc` translated, without retrying."""
        err = translate(exc, target=self.target)
        if err is None:
            raise exc
        self._annotate(err)
        raise err from exc

    def _backoff(self) -> float:
        base = self.policy.delay(self.attempt)
        return base * (1 + self.policy.jitter * (self._rng() - 0.5) * 2)

    def _annotate(self, err: TaskerError) -> None:
        err.details["attempts"] = self.attempt

    def _expired(self) -> DeadlineExceeded:
        message = f"deadline exceeded waiting for the {self.target}"
        if self._last is not None:
            message += f" (last error: {self._last.message})"
        err = DeadlineExceeded(message)
        self._annotate(err)
        return err
