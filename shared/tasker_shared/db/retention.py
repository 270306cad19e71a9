"""Retention: finished tasks and their rows, request outcomes, poison records and archived
queue messages older than an age are deleted in small batches (`tasker.prune_history_v1`)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import datetime, timedelta

import psycopg

from tasker_shared.db.database import Conn
from tasker_shared.errors import ConfigError

_AGE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)?\s*$")
BUSY_RETRIES = 10  # batches in a row that may meet a lock before the CLI gives up
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}


def parse_age(text: str) -> timedelta:
    """`30d`, `12h`, `90m`, `45s`, `2w` or a bare number of days."""
    match = _AGE_RE.match(text)
    if not match:
        raise ConfigError(
            f"invalid age {text!r}: expected a number with an optional unit s, m, h, d or w"
            " (for example 7d or 12h)")
    value = float(match[1]) * _UNIT_SECONDS[match[2] or "d"]
    return timedelta(seconds=value)


@dataclass(kw_only=True, slots=True)
class PruneCounts:
    """Rows deleted (tasks and steps with everything that hangs off them)."""

    tasks: int = 0
    steps: int = 0
    outcomes: int = 0
    poison: int = 0
    archived: int = 0

    def add(self, other: PruneCounts) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def more_after(self, batch_size: int) -> bool:
        """Did this batch fill up (so another may find more)?"""
        return max(self.tasks, self.outcomes, self.poison, self.archived) >= batch_size

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def prune_cutoff(conn: Conn, age: timedelta) -> datetime:
    """The database's now() minus `age`: rows older than this go."""
    row = conn.execute("SELECT now() - make_interval(secs => %s) AS cutoff",
                       (age.total_seconds(),)).fetchone()
    assert row is not None
    cutoff: datetime = row["cutoff"]
    return cutoff


def prune_batch(conn: Conn, cutoff: datetime, batch_size: int, *,
                lock_timeout_ms: int) -> PruneCounts:
    """One batch in the caller's transaction, giving way (lock_timeout) to live work."""
    conn.execute("SELECT set_config('lock_timeout', %s, true)", (f"{int(lock_timeout_ms)}ms",))
    row = conn.execute("SELECT tasker.prune_history_v1(%s, %s) AS counts",
                       (cutoff, batch_size)).fetchone()
    assert row is not None
    counts = row["counts"]
    return PruneCounts(**{f.name: int(counts.get(f.name) or 0) for f in fields(PruneCounts)})


def prune_history(conn: Conn, age: timedelta, *, batch_size: int = 500,
                  lock_timeout_ms: int = 1000, max_batches: int | None = None,
                  on_batch: Callable[[PruneCounts], None] | None = None) -> PruneCounts:
    """Delete everything older than `age`, one committed batch at a time (blocking; for
    the CLI). `conn` must not be in autocommit mode."""
    cutoff = prune_cutoff(conn, age)
    conn.commit()
    total = PruneCounts()
    done = busy = 0
    while max_batches is None or done < max_batches:
        try:
            with conn.transaction():
                counts = prune_batch(conn, cutoff, batch_size, lock_timeout_ms=lock_timeout_ms)
        except psycopg.errors.LockNotAvailable:
            busy += 1  # live work holds a row of this batch: give way, then try again
            if busy > BUSY_RETRIES:
                raise
            time.sleep(0.2 * busy)
            continue
        done += 1
        busy = 0
        total.add(counts)
        if on_batch is not None:
            on_batch(counts)
        if not counts.more_after(batch_size):
            break
    return total
