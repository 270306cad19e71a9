"""Unit and property tests for tasker_shared.domain.backoff."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tasker_shared.domain.backoff import (
    BackoffDecision,
    compute_backoff,
    parse_retry_after,
    retry_after_from_headers,
)

NOW = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)


def _backoff(**overrides: object) -> BackoffDecision:
    options: dict[str, object] = {
        "attempts": 1,
        "base_seconds": 1.0,
        "multiplier": 2.0,
        "max_seconds": 3600.0,
        "jitter_enabled": False,
        "jitter_max_percentage": 0.15,
    }
    options.update(overrides)
    return compute_backoff(**options)  # type: ignore[arg-type]


class TestRetryAfterFromHeaders:
    def test_case_insensitive(self) -> None:
        assert retry_after_from_headers({"retry-after": "5"}) == "5"
        assert retry_after_from_headers({"RETRY-AFTER": "6"}) == "6"
        assert retry_after_from_headers({"Content-Type": "x", "Retry-After": "7"}) == "7"

    def test_absent(self) -> None:
        assert retry_after_from_headers({}) is None
        assert retry_after_from_headers({"X-Retry": "1"}) is None


class TestParseRetryAfter:
    def test_seconds(self) -> None:
        assert parse_retry_after("120", NOW) == 120.0
        assert parse_retry_after("  0 ", NOW) == 0.0

    @pytest.mark.parametrize("value", ["", "soon", "-5", "1.5", "²", "Mon, 99 Foo 2025"])
    def test_garbage(self, value: str) -> None:
        assert parse_retry_after(value, NOW) is None

    def test_http_date_future(self) -> None:
        value = format_datetime(NOW + timedelta(seconds=90), usegmt=True)
        assert parse_retry_after(value, NOW) == 90.0

    def test_http_date_past_is_zero(self) -> None:
        value = format_datetime(NOW - timedelta(hours=1), usegmt=True)
        assert parse_retry_after(value, NOW) == 0.0

    def test_rfc2822_with_offset(self) -> None:
        assert parse_retry_after("Wed, 01 Jan 2025 13:00:30 +0100", NOW) == 30.0

    def test_naive_date_and_naive_now_are_utc(self) -> None:
        # "-0000" yields a naive datetime from email.utils
        value = "Wed, 01 Jan 2025 12:00:10 -0000"
        assert parse_retry_after(value, NOW) == 10.0
        assert parse_retry_after(value, NOW.replace(tzinfo=None)) == 10.0

    def test_default_now(self) -> None:
        far = format_datetime(datetime.now(UTC) + timedelta(days=1), usegmt=True)
        delay = parse_retry_after(far)
        assert delay is not None
        assert 86000 < delay <= 86400


class TestExponential:
    def test_no_jitter_sequence(self) -> None:
        delays = [_backoff(attempts=n).delay_seconds for n in range(5)]
        assert delays == [1.0, 2.0, 4.0, 8.0, 16.0]
        assert _backoff().kind == "exponential"

    def test_cap(self) -> None:
        assert _backoff(attempts=20, max_seconds=10.0).delay_seconds == 10.0

    def test_overflow_is_capped(self) -> None:
        assert _backoff(attempts=10_000, max_seconds=60.0).delay_seconds == 60.0

    def test_zero_base_and_negative_inputs(self) -> None:
        assert _backoff(base_seconds=0.0).delay_seconds == 0.0
        assert _backoff(attempts=-3).delay_seconds == 1.0
        assert _backoff(multiplier=-2.0).delay_seconds == 0.0
        assert _backoff(max_seconds=-1.0).delay_seconds == 0.0

    def test_jitter_both_signs(self) -> None:
        rng = random.Random(7)
        delays = {
            _backoff(attempts=3, jitter_enabled=True, rng=rng).delay_seconds for _ in range(200)
        }
        assert min(delays) < 8.0 < max(delays)
        assert all(8.0 * 0.85 <= d <= 8.0 * 1.15 for d in delays)

    def test_jitter_uses_default_rng(self) -> None:
        delay = _backoff(attempts=3, jitter_enabled=True).delay_seconds
        assert 8.0 * 0.85 <= delay <= 8.0 * 1.15

    def test_jitter_disabled_by_zero_percentage(self) -> None:
        assert _backoff(attempts=3, jitter_enabled=True, jitter_max_percentage=0).delay_seconds == 8

    def test_jitter_never_above_cap(self) -> None:
        rng = random.Random(1)
        for _ in range(100):
            d = _backoff(attempts=10, max_seconds=5.0, jitter_enabled=True, rng=rng)
            assert 0.0 <= d.delay_seconds <= 5.0


class TestServerRequested:
    def test_seconds_win_over_exponential(self) -> None:
        d = _backoff(attempts=5, retry_after="3", jitter_enabled=True)
        assert d == BackoffDecision(delay_seconds=3.0, kind="server_requested")

    def test_capped(self) -> None:
        assert _backoff(retry_after="7200", max_seconds=10.0).delay_seconds == 10.0

    def test_date(self) -> None:
        value = format_datetime(NOW + timedelta(seconds=42), usegmt=True)
        d = _backoff(retry_after=value, now=NOW)
        assert d == BackoffDecision(delay_seconds=42.0, kind="server_requested")

    def test_garbage_falls_back_to_exponential(self) -> None:
        d = _backoff(attempts=2, retry_after="later please")
        assert d == BackoffDecision(delay_seconds=4.0, kind="exponential")


@given(
    attempts=st.integers(min_value=0, max_value=2000),
    base=st.floats(min_value=0.0, max_value=1e6, allow_nan=False),
    multiplier=st.floats(min_value=1.0, max_value=10.0),
    cap=st.floats(min_value=0.0, max_value=1e7, allow_nan=False),
    pct=st.floats(min_value=0.0, max_value=1.0),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_property_exponential_bounds(
    attempts: int, base: float, multiplier: float, cap: float, pct: float, seed: int
) -> None:
    plain = _backoff(
        attempts=attempts, base_seconds=base, multiplier=multiplier, max_seconds=cap
    ).delay_seconds
    assert 0.0 <= plain <= cap
    jittered = _backoff(
        attempts=attempts,
        base_seconds=base,
        multiplier=multiplier,
        max_seconds=cap,
        jitter_enabled=True,
        jitter_max_percentage=pct,
        rng=random.Random(seed),
    ).delay_seconds
    assert 0.0 <= jittered <= cap
    assert plain * (1 - pct) - 1e-9 <= jittered <= plain * (1 + pct) + 1e-9


@given(
    offset=st.integers(min_value=-(10**7), max_value=10**7),
    cap=st.floats(min_value=0.0, max_value=1e8, allow_nan=False),
)
def test_property_retry_after_dates(offset: int, cap: float) -> None:
    value = format_datetime(NOW + timedelta(seconds=offset), usegmt=True)
    assert parse_retry_after(value, NOW) == float(max(offset, 0))
    d = _backoff(retry_after=value, now=NOW, max_seconds=cap)
    assert d.kind == "server_requested"
    assert d.delay_seconds == min(float(max(offset, 0)), cap)


@given(seconds=st.integers(min_value=0, max_value=10**9))
def test_property_retry_after_seconds(seconds: int) -> None:
    assert parse_retry_after(str(seconds), NOW) == float(seconds)
