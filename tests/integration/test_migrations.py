"""Migrations: from empty (PGMQ included), idempotent, safe to race, checksummed."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from tasker_shared.db import migrate as migrate_module
from tasker_shared.db.migrate import (
    MIGRATION_LOCK_KEY,
    Migration,
    available_migrations,
    migrate,
    migration_status,
)
from tasker_shared.errors import ConfigError, StoreError

ROOT = Path(__file__).resolve().parents[2]


def ledger(url: str) -> list[tuple[str, str, str]]:
    with psycopg.connect(url) as conn:
        return [(r[0], r[1], r[2]) for r in conn.execute(
            "SELECT version, name, checksum FROM tasker.schema_migrations ORDER BY version")]


def expected_ledger() -> list[tuple[str, str, str]]:
    return [(m.version, m.name, m.checksum) for m in available_migrations()]


def lock_is_free(url: str) -> bool:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT pg_try_advisory_lock(%s)", (MIGRATION_LOCK_KEY,)).fetchone()
        return bool(row and row[0])


def test_available_migrations_are_ordered_and_unique() -> None:
    found = available_migrations()
    versions = [m.version for m in found]
    assert versions == sorted(set(versions))
    assert versions[:5] == ["0001", "0002", "0003", "0004", "0005"]
    assert all(len(m.checksum) == 64 and m.sql.strip() for m in found)


def test_migrate_from_empty_then_rerun_is_a_no_op(empty_db_url: str) -> None:
    before = migration_status(empty_db_url)
    assert before
    assert all(s.applied_at is None for s in before)

    applied = migrate(empty_db_url)
    assert [m.version for m in applied] == [m.version for m in available_migrations()]
    assert ledger(empty_db_url) == expected_ledger()
    with psycopg.connect(empty_db_url) as conn:
        row = conn.execute("SELECT to_regnamespace('pgmq') IS NOT NULL").fetchone()
        assert row is not None
        assert row[0], "PGMQ is installed with the migrations"
        queues = {r[0] for r in conn.execute("SELECT queue_name FROM pgmq.meta")}
        assert {"orchestration_task_requests", "orchestration_step_results",
                "orchestration_task_finalizations"} <= queues
        assert not migrate_module._install_pgmq(conn)  # present: left alone
    status = migration_status(empty_db_url)
    assert [s.version for s in status] == [m.version for m in available_migrations()]
    assert all(s.applied_at is not None for s in status)

    assert migrate(empty_db_url) == []
    assert ledger(empty_db_url) == expected_ledger()
    assert migration_status(empty_db_url) == status
    assert lock_is_free(empty_db_url)


def test_two_processes_migrating_at_once(empty_db_url: str) -> None:
    code = ("import sys; from tasker_shared.db.migrate import migrate; "
            "print(len(migrate(sys.argv[1])))")
    # Hold the migration lock until both processes wait on it, so they really race.
    with psycopg.connect(empty_db_url, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_KEY,))
        procs = [subprocess.Popen([sys.executable, "-c", code, empty_db_url], cwd=ROOT,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for _ in range(2)]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            row = holder.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
                                 " AND NOT granted AND database = (SELECT oid FROM pg_database"
                                 " WHERE datname = current_database())").fetchone()
            if row is not None and row[0] == 2:
                break
            time.sleep(0.02)
        else:
            pytest.fail("the migrating processes never waited for the lock")
        holder.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK_KEY,))
    outputs = [p.communicate(timeout=120) for p in procs]
    for proc, (_out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
    applied = sorted(int(out.strip().splitlines()[-1]) for out, _ in outputs)
    assert applied == [0, len(available_migrations())]
    assert ledger(empty_db_url) == expected_ledger()
    with psycopg.connect(empty_db_url) as conn:
        row = conn.execute("SELECT count(*) FROM pgmq.meta"
                           " WHERE queue_name = 'orchestration_task_requests'").fetchone()
        assert row is not None
        assert row[0] == 1


def test_changed_checksum_is_refused(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("UPDATE tasker.schema_migrations SET checksum = 'edited'"
                     " WHERE version = '0002'")
    with pytest.raises(ConfigError, match=r"0002_state_functions was changed after it was "
                                          r"applied"):
        migrate(db_url)
    assert lock_is_free(db_url)


def test_a_failing_migration_leaves_nothing_behind(db_url: str,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    broken = Migration(version="9999", name="broken",
                       sql="CREATE TABLE tasker.half_done (x int); SELECT 1/0;")
    real = available_migrations()
    monkeypatch.setattr(migrate_module, "available_migrations", lambda: [*real, broken])
    with pytest.raises(StoreError, match="9999_broken failed"):
        migrate(db_url)
    with psycopg.connect(db_url) as conn:
        row = conn.execute("SELECT to_regclass('tasker.half_done') IS NULL").fetchone()
        assert row is not None
        assert row[0]
    assert ledger(db_url) == expected_ledger()
    assert lock_is_free(db_url)
    monkeypatch.undo()
    assert migrate(db_url) == []
