"""Function files: applied after the migrations when one changed, checksummed, in one
transaction; a changed return type goes through DROP FUNCTION IF EXISTS; removal is a DROP."""

from __future__ import annotations

import dataclasses

import psycopg
import pytest

from tasker_shared.db import migrate as migrate_module
from tasker_shared.db.migrate import (
    MIGRATION_LOCK_KEY,
    FunctionFile,
    Migration,
    available_function_files,
    migrate_database,
)
from tasker_shared.errors import ConfigError, StoreError

PROBE_INT = ("CREATE OR REPLACE FUNCTION tasker.files_probe_v1() RETURNS integer"
             " LANGUAGE sql IMMUTABLE AS 'SELECT 1';\n")
# A changed return type: CREATE OR REPLACE cannot do it, so the file drops the old
# signature first (idempotent: on every later application it drops and recreates this one).
PROBE_TEXT = ("DROP FUNCTION IF EXISTS tasker.files_probe_v1();\n"
              "CREATE FUNCTION tasker.files_probe_v1() RETURNS text"
              " LANGUAGE sql IMMUTABLE SET work_mem = '8MB' AS $$SELECT 'one'$$;\n")


def with_queues_extra(extra: str) -> list[FunctionFile]:
    """The shipped files, with `extra` appended to queues.sql."""
    return [dataclasses.replace(f, sql=f.sql + extra) if f.name == "queues" else f
            for f in available_function_files()]


def recorded(url: str) -> dict[str, str]:
    with psycopg.connect(url) as conn:
        return {str(r[0]): str(r[1]) for r in conn.execute(
            "SELECT name, checksum FROM tasker.schema_function_files")}


def probe(url: str) -> tuple[str, list[str] | None] | None:
    """What tasker.files_probe_v1() returns and its settings, or None when it is absent."""
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT p.proconfig FROM pg_proc p"
                           " WHERE p.oid = to_regprocedure('tasker.files_probe_v1()')"
                           ).fetchone()
        if row is None:
            return None
        value = conn.execute("SELECT tasker.files_probe_v1()::text").fetchone()
        assert value is not None
        return (str(value[0]), row[0])


def forget_applied_files(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DELETE FROM tasker.schema_function_files")


def function_xmins(url: str) -> dict[str, str]:
    with psycopg.connect(url) as conn:
        return {str(r[0]): str(r[1]) for r in conn.execute(
            "SELECT oid::regprocedure::text, xmin::text FROM pg_proc"
            " WHERE pronamespace = 'tasker'::regnamespace")}


def lock_is_free(url: str) -> bool:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT pg_try_advisory_lock(%s)", (MIGRATION_LOCK_KEY,)).fetchone()
        return bool(row and row[0])


def test_current_files_are_left_alone(db_url: str) -> None:
    assert recorded(db_url) == {f.name: f.checksum for f in available_function_files()}
    before = function_xmins(db_url)
    result = migrate_database(db_url)
    assert result.migrations == []
    assert result.function_files == []
    assert function_xmins(db_url) == before


def test_a_changed_file_is_applied_with_the_others(db_url: str,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(migrate_module, "available_function_files",
                        lambda: with_queues_extra(PROBE_INT))
    result = migrate_database(db_url)
    assert [f.name for f in result.function_files] == list(migrate_module.FUNCTION_FILES)
    assert probe(db_url) == ("1", None)
    assert recorded(db_url)["queues"] == with_queues_extra(PROBE_INT)[3].checksum
    assert migrate_database(db_url).function_files == []

    # A new return type: the file drops the old signature before creating the new one.
    monkeypatch.setattr(migrate_module, "available_function_files",
                        lambda: with_queues_extra(PROBE_TEXT))
    assert migrate_database(db_url).function_files
    assert probe(db_url) == ("one", ["work_mem=8MB"])
    forget_applied_files(db_url)  # applied again: the same result
    assert migrate_database(db_url).function_files
    assert probe(db_url) == ("one", ["work_mem=8MB"])

    # Taken out of the file, a function stays (nothing is dropped implicitly) until a
    # DROP says so.
    monkeypatch.setattr(migrate_module, "available_function_files",
                        lambda: with_queues_extra(""))
    migrate_database(db_url)
    assert probe(db_url) == ("one", ["work_mem=8MB"])
    monkeypatch.setattr(migrate_module, "available_function_files", lambda: with_queues_extra(
        "DROP FUNCTION IF EXISTS tasker.files_probe_v1();\n"))
    migrate_database(db_url)
    assert probe(db_url) is None


def test_a_return_type_change_without_drop_fails_whole(db_url: str,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(migrate_module, "available_function_files",
                        lambda: with_queues_extra(PROBE_INT))
    migrate_database(db_url)
    before = recorded(db_url)
    xmins = function_xmins(db_url)
    changed = PROBE_INT.replace("RETURNS integer", "RETURNS text")
    monkeypatch.setattr(migrate_module, "available_function_files",
                        lambda: with_queues_extra(changed))
    with pytest.raises(StoreError, match=r"function file queues\.sql failed: .*return type"):
        migrate_database(db_url)
    assert recorded(db_url) == before
    assert function_xmins(db_url) == xmins  # common.sql and states.sql rolled back too
    assert probe(db_url) == ("1", None)
    assert lock_is_free(db_url)


def test_files_are_due_after_a_migration_until_applied(
        db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A migration that drops a view in its way: the files bring it back, even when the
    run that applied the migration failed before applying them."""
    real = migrate_module.available_migrations()
    in_the_way = Migration(version="9998", name="view_in_the_way",
                           sql="DROP VIEW tasker.v_dlq_dashboard")
    monkeypatch.setattr(migrate_module, "available_migrations", lambda: [*real, in_the_way])

    def fail(conn: object) -> list[FunctionFile]:
        raise StoreError("connection lost")

    monkeypatch.setattr(migrate_module, "_apply_function_files", fail)
    with pytest.raises(StoreError, match="connection lost"):
        migrate_database(db_url)
    assert not view_exists(db_url)
    assert lock_is_free(db_url)
    monkeypatch.undo()
    monkeypatch.setattr(migrate_module, "available_migrations", lambda: [*real, in_the_way])
    result = migrate_database(db_url)
    assert result.migrations == []
    assert [f.name for f in result.function_files] == list(migrate_module.FUNCTION_FILES)
    assert view_exists(db_url)


def view_exists(url: str) -> bool:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT to_regclass('tasker.v_dlq_dashboard') IS NOT NULL"
                           ).fetchone()
        return bool(row and row[0])


def test_every_function_file_must_be_listed_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    listed = migrate_module.FUNCTION_FILES
    assert [f.name for f in available_function_files()] == list(listed)
    monkeypatch.setattr(migrate_module, "FUNCTION_FILES", listed[:-1])
    with pytest.raises(ConfigError, match=r"\['dashboard'\] are not where FUNCTION_FILES"):
        available_function_files()
    monkeypatch.setattr(migrate_module, "FUNCTION_FILES", (*listed, "nowhere"))
    with pytest.raises(ConfigError, match=r"\['nowhere'\]"):
        available_function_files()
