"""Circuit breakers (SPEC §8.4): closed → open after `failure_threshold` consecutive failures,
open → half-open after `timeout_seconds`, half-open → closed after `success_threshold`
successes; any failure while half-open opens it again.

Probe-based recovery: a breaker given `probe_interval_seconds` lets its owner run one cheap
probe (for the database: `SELECT 1` on a fresh connection) at most that often while it is
open, and closes as soon as a probe succeeds. Recovery then takes about one probe interval
after the guarded resource answers again, instead of a whole `timeout_seconds` (and a trial
call that fails for a reason the probe does not share cannot keep it open for cycles).

A pure state machine with an injectable clock; callers ask `allow()` before a call and
report the outcome with `record_success()` / `record_failure()`; probes go through
`begin_probe()` / `end_probe()`. Not thread-safe: use it from the Trio thread only.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from tasker_shared.runtime.settings import CircuitBreakerSettings


class CircuitState(StrEnum):
    CLOSED = "closed"
    HALF_OPEN = "half_open"
    OPEN = "open"

    @property
    def gauge_value(self) -> int:
        """The `tasker_circuit_breaker_state` value: 0 closed, 1 half-open, 2 open."""
        return {"closed": 0, "half_open": 1, "open": 2}[self.value]


@dataclass(frozen=True, kw_only=True, slots=True)
class CircuitStatistics:
    name: str
    state: str
    consecutive_failures: int
    half_open_successes: int
    total_successes: int
    total_failures: int
    rejected: int
    times_opened: int
    retry_after_seconds: float
    probes: int
    probes_failed: int


OnChange = Callable[[str, CircuitState], None]


class CircuitBreaker:
    """One breaker; see the module docstring."""

    def __init__(
        self,
        name: str,
        *,
        failure_threshold: int = 5,
        timeout_seconds: float = 30.0,
        success_threshold: int = 2,
        probe_interval_seconds: float = 0.0,
        enabled: bool = True,
        clock: Callable[[], float] = time.monotonic,
        on_change: OnChange | None = None,
    ) -> None:
        if failure_threshold < 1 or success_threshold < 1 or timeout_seconds < 0:
            raise ValueError("thresholds must be >= 1 and the timeout >= 0")
        if probe_interval_seconds < 0:
            raise ValueError("the probe interval must be >= 0 (0: no probe)")
        self.name = name
        self.failure_threshold = failure_threshold
        self.timeout_seconds = timeout_seconds
        self.success_threshold = success_threshold
        self.probe_interval_seconds = probe_interval_seconds  # 0: recovery by timeout only
        self.enabled = enabled
        self._clock = clock
        self._on_change = on_change
        self._state = CircuitState.CLOSED
        self._opened_at = 0.0
        self._failures = 0
        self._half_open_successes = 0
        self.total_successes = 0
        self.total_failures = 0
        self.rejected = 0
        self.times_opened = 0
        self.probes = 0
        self.probes_failed = 0
        self._probing = False
        self._next_probe_at = 0.0
        if on_change is not None:
            on_change(name, self._state)

    @classmethod
    def from_settings(
        cls, name: str, settings: CircuitBreakerSettings, *, probed: bool = False,
        clock: Callable[[], float] = time.monotonic, on_change: OnChange | None = None,
    ) -> CircuitBreaker:
        """A breaker with the configured thresholds; `probed` when its owner runs probes
        (then `settings.probe_interval_seconds` applies)."""
        return cls(name, failure_threshold=settings.failure_threshold,
                   timeout_seconds=settings.timeout_seconds,
                   success_threshold=settings.success_threshold,
                   probe_interval_seconds=settings.probe_interval_seconds if probed else 0.0,
                   enabled=settings.enabled, clock=clock, on_change=on_change)

    @property
    def state(self) -> CircuitState:
        """The current state; an open breaker whose timeout has passed becomes half-open."""
        if (self._state is CircuitState.OPEN
                and self._clock() - self._opened_at >= self.timeout_seconds):
            self._half_open_successes = 0
            self._move(CircuitState.HALF_OPEN)
        return self._state

    def allow(self) -> bool:
        """May a call go ahead? False (counted as rejected) while the breaker is open."""
        if not self.enabled or self.state is not CircuitState.OPEN:
            return True
        self.rejected += 1
        return False

    def retry_after(self) -> float:
        """Seconds until an open breaker lets a trial call through or may run its next probe
        (0 otherwise)."""
        if self.state is not CircuitState.OPEN:
            return 0.0
        until = self._opened_at + self.timeout_seconds
        if self.probe_interval_seconds > 0:
            until = min(until, self._next_probe_at)
        return max(0.0, until - self._clock())

    def begin_probe(self) -> bool:
        """Should the caller run a probe now? True at most once per `probe_interval_seconds`
        while the breaker is open (and never while another probe runs); the caller must then
        call `end_probe` with the outcome."""
        if (not self.enabled or self.probe_interval_seconds <= 0 or self._probing
                or self.state is not CircuitState.OPEN):
            return False
        now = self._clock()
        if now < self._next_probe_at:
            return False
        self._probing = True
        self._next_probe_at = now + self.probe_interval_seconds
        self.probes += 1
        return True

    def end_probe(self, ok: bool) -> None:
        """The outcome of the probe `begin_probe` allowed: success closes the breaker."""
        self._probing = False
        if not ok:
            self.probes_failed += 1
        elif self.state is not CircuitState.CLOSED:
            self._failures = 0
            self._half_open_successes = 0
            self._move(CircuitState.CLOSED)

    def record_success(self) -> None:
        self.total_successes += 1
        state = self.state
        if state is CircuitState.HALF_OPEN:
            self._half_open_successes += 1
            if self._half_open_successes >= self.success_threshold:
                self._failures = 0
                self._move(CircuitState.CLOSED)
        elif state is CircuitState.CLOSED:
            self._failures = 0

    def record_failure(self) -> None:
        self.total_failures += 1
        state = self.state
        if state is CircuitState.HALF_OPEN:
            self._open()
        elif state is CircuitState.CLOSED:
            self._failures += 1
            if self._failures >= self.failure_threshold:
                self._open()

    def reset(self) -> None:
        """Close the breaker and forget recent failures (operator action, tests)."""
        self._failures = 0
        self._half_open_successes = 0
        self._move(CircuitState.CLOSED)

    def statistics(self) -> CircuitStatistics:
        state = self.state
        return CircuitStatistics(
            name=self.name, state=state.value, consecutive_failures=self._failures,
            half_open_successes=self._half_open_successes,
            total_successes=self.total_successes, total_failures=self.total_failures,
            rejected=self.rejected, times_opened=self.times_opened,
            retry_after_seconds=round(self.retry_after(), 3), probes=self.probes,
            probes_failed=self.probes_failed)

    def _open(self) -> None:
        self._opened_at = self._clock()
        self._next_probe_at = self._opened_at + self.probe_interval_seconds
        self._failures = 0
        self._half_open_successes = 0
        self.times_opened += 1
        self._move(CircuitState.OPEN)

    def _move(self, state: CircuitState) -> None:
        if state is self._state:
            return
        self._state = state
        if self._on_change is not None:
            self._on_change(self.name, state)
