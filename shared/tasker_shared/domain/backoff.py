"""Retry backoff: a server's Retry-After wins, else capped exponential with jitter (SPEC §6.2)."""

from __future__ import annotations

import random
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Literal

__all__ = [
    "BackoffDecision",
    "BackoffKind",
    "compute_backoff",
    "parse_retry_after",
    "retry_after_from_headers",
]

BackoffKind = Literal["server_requested", "exponential"]

_DIGITS = re.compile(r"[0-9]+")
_DEFAULT_RNG = random.Random()


@dataclass(frozen=True, kw_only=True, slots=True)
class BackoffDecision:
    """How long a failed step waits before its next attempt, and why."""

    delay_seconds: float
    kind: BackoffKind


def retry_after_from_headers(headers: Mapping[str, str]) -> str | None:
    """The value of the `Retry-After` header, looked up case-insensitively, or None."""
    for name, value in headers.items():
        if name.lower() == "retry-after":
            return value
    return None


def parse_retry_after(value: str, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After value (delta-seconds or HTTP date); None if garbage.

    A date in the past gives 0. Dates without a zone, and a naive `now`, are taken as UTC.
    """
    text = value.strip()
    if _DIGITS.fullmatch(text):
        return float(int(text))
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = now if now is not None else datetime.now(UTC)
    if current.tzinfo is None:
        current = current.replace(tzinfo=UTC)
    return max(0.0, (when - current).total_seconds())


def _exponential(*, attempts: int, base_seconds: float, multiplier: float, cap: float) -> float:
    """`min(base * multiplier**attempts, cap)` without overflow; never negative."""
    if base_seconds <= 0.0:
        return 0.0
    try:
        raw = base_seconds * multiplier ** max(attempts, 0)
    except OverflowError:
        return cap
    return min(max(raw, 0.0), cap)


def compute_backoff(
    *,
    attempts: int,
    base_seconds: float,
    multiplier: float,
    max_seconds: float,
    jitter_enabled: bool,
    jitter_max_percentage: float,
    retry_after: str | None = None,
    now: datetime | None = None,
    rng: random.Random | None = None,
) -> BackoffDecision:
    """The delay before the next attempt; `attempts` is the already-incremented attempt count.

    A parseable `retry_after` gives `min(seconds until then, max_seconds)` with no jitter.
    Otherwise the delay is `min(base * multiplier**attempts, max_seconds)`, moved up or down
    (50/50) by a uniform amount of at most `jitter_max_percentage` of itself, and clamped
    to `[0, max_seconds]`.
    """
    cap = max(max_seconds, 0.0)
    if retry_after is not None:
        requested = parse_retry_after(retry_after, now)
        if requested is not None:
            return BackoffDecision(delay_seconds=min(requested, cap), kind="server_requested")
    delay = _exponential(
        attempts=attempts, base_seconds=base_seconds, multiplier=multiplier, cap=cap
    )
    fraction = min(max(jitter_max_percentage, 0.0), 1.0)
    if jitter_enabled and fraction > 0.0 and delay > 0.0:
        source = rng if rng is not None else _DEFAULT_RNG
        amount = source.uniform(0.0, delay * fraction)
        delay = delay - amount if source.random() < 0.5 else delay + amount
        delay = min(max(delay, 0.0), cap)
    return BackoffDecision(delay_seconds=delay, kind="exponential")
