"""Pure maintenance decisions: when a table needs VACUUM or ANALYZE, and retention ages."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tasker_shared.db.maintenance import TableStats, Upkeep, upkeep_for
from tasker_shared.db.retention import PruneCounts, parse_age
from tasker_shared.errors import ConfigError
from tasker_shared.runtime.settings import MaintenanceSettings

S = MaintenanceSettings()


def table(kind: str = "state", *, live: int = 0, dead: int = 0, modified: int = 0,
          inserted: int = 0) -> TableStats:
    return TableStats(schema="pgmq" if kind == "queue" else "tasker", name="t",
                      kind="queue" if kind == "queue" else "state", live=live, dead=dead,
                      modified=modified, inserted=inserted)


def test_queue_tables_are_vacuumed_by_dead_rows_only() -> None:
    assert upkeep_for(table("queue", dead=999), S) == Upkeep(vacuum=False, analyze=False)
    assert upkeep_for(table("queue", live=145, dead=219_000, modified=10**6), S) == Upkeep(
        vacuum=True, analyze=False)


def test_state_tables_need_dead_rows_in_number_and_share() -> None:
    assert not upkeep_for(table(live=100, dead=9_999), S).vacuum
    assert upkeep_for(table(live=100, dead=10_000), S).vacuum
    # 10,000 dead rows in 4 million live ones are 0.25%: not yet
    assert not upkeep_for(table(live=4_000_000, dead=10_000), S).vacuum
    assert upkeep_for(table(live=4_000_000, dead=200_000), S).vacuum


def test_inserts_and_changes() -> None:
    assert upkeep_for(table(live=200_000, inserted=100_000), S).vacuum
    assert not upkeep_for(table(live=10_000_000, inserted=100_000), S).vacuum
    assert upkeep_for(table(live=1000, modified=5000), S) == Upkeep(vacuum=False, analyze=True)
    assert not upkeep_for(table(live=1_000_000, modified=50_000), S).analyze
    assert not upkeep_for(table(live=0, modified=4999), S).needed


@pytest.mark.parametrize(("text", "expected"), [
    ("7d", timedelta(days=7)), ("12h", timedelta(hours=12)), ("90m", timedelta(minutes=90)),
    ("45s", timedelta(seconds=45)), ("2w", timedelta(weeks=2)), ("30", timedelta(days=30)),
    ("0.5d", timedelta(hours=12)),
])
def test_parse_age(text: str, expected: timedelta) -> None:
    assert parse_age(text) == expected


@pytest.mark.parametrize("text", ["", "7x", "-1d", "seven days", "7 d 3h"])
def test_parse_age_refuses(text: str) -> None:
    with pytest.raises(ConfigError, match="invalid age"):
        parse_age(text)


def test_prune_counts_more_after() -> None:
    assert PruneCounts(tasks=500).more_after(500)
    assert PruneCounts(archived=500).more_after(500)
    assert not PruneCounts(tasks=499, outcomes=10).more_after(500)
