"""The SQL that runs: a database built from scratch and one upgraded from the previous
release have the same catalog, the function files alone define every function and view,
and migrations after the switch to function files change the schema only."""

from __future__ import annotations

import re
from collections.abc import Iterator

import psycopg
import pytest

from tasker_shared.db import migrate as migrate_module
from tasker_shared.db.migrate import (
    FUNCTION_FILES,
    available_function_files,
    available_migrations,
    migrate_database,
)
from tests.conftest import create_database, drop_database
from tests.integration.catalog_support import ROUTINES, differences, snapshot

# The migrations of the last release (commit aef67a6), as their checksums pin them: the
# shipped files 0001-0015 are still exactly these.
RELEASE_CHECKSUMS = {
    "0001": "a6c96d2278174ab6d0daafef25a2d11bae29539a5fc9392a14d62ba01f8e911b",
    "0002": "8fbe9ab2e8c2ee4d5b1c37207a70388a095bb5a4f74a2d7a229cc83846e2759f",
    "0003": "a867c777516ad2de482c9ee33be03296687943737b4d2356bef1275abeedaafd",
    "0004": "31c648a96fc94a19e502e1195ca32b23ac444def8baed303c8c8b6e79a133cd5",
    "0005": "7b10d70c1ef483ff7c63b6b3373894ba5b83d1293f70ef3eebbd6d1a5d7e9eef",
    "0006": "370c02abc01521126004eb593b47f2132ba1cdf09b843087757e0c5b9ce66532",
    "0007": "8e312ee334dbadce0522371000fd2b09495937dc3f004785c2d3dff9c6f7117d",
    "0008": "e8135dd713c94a4620fd00447f346e57559ed376a015dd4fe9bc4c28d506a116",
    "0009": "fccdc1e2b957493548ebb5bff858f58dd10f8d8e771b46d3e3d33684d7e6352b",
    "0010": "49a6835b65dbe3041d89dd9a7c81483455254a8f3b53ad326627cd0faa540d43",
    "0011": "09fb27194cdb9cac2504153b8430a663a051364734de400923110e8db7b0e6ce",
    "0012": "97f080ca43e872f40b1ba4862427fe572eacbd3ddb0b7c42e78919e2e73c5c71",
    "0013": "a2cfa4839941a95a654b31a76fa5118fa6ea8738874d6de8762302e6af257581",
    "0014": "b30b532e06b5768d50bc93e0e0ad88ba48d2a7a474aa13dd79e7d63bd8fdd57f",
    "0015": "2b57b7a785fb8d5b0e6d7b2af58d6987097e9ff3ea05a0135c9eae3c9b8e69ca",
}
# The release's migrator recorded migrations in this ledger only.
RELEASE_LEDGER = """
CREATE SCHEMA IF NOT EXISTS tasker;
CREATE TABLE IF NOT EXISTS tasker.schema_migrations (
    version text PRIMARY KEY,
    name text NOT NULL,
    checksum text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""
# The last migration that defines functions or views; later ones change the schema only
# (functions and views are defined in sql/functions/<area>.sql).
LAST_MIGRATION_WITH_FUNCTIONS = "0024"
_DEFINES_ROUTINES = re.compile(
    r"\b(CREATE\s+(OR\s+REPLACE\s+)?|ALTER\s+)(FUNCTION|PROCEDURE|VIEW)\b", re.IGNORECASE)

_DROP_ROUTINES = """
DO $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT oid::regclass AS v FROM pg_class
              WHERE relnamespace = 'tasker'::regnamespace AND relkind = 'v' LOOP
        EXECUTE format('DROP VIEW IF EXISTS %s CASCADE', r.v);
    END LOOP;
    FOR r IN SELECT oid::regprocedure AS f FROM pg_proc
              WHERE pronamespace = 'tasker'::regnamespace LOOP
        EXECUTE format('DROP FUNCTION IF EXISTS %s CASCADE', r.f);
    END LOOP;
END
$$
"""


@pytest.fixture
def second_empty_db_url(pg_server: str) -> Iterator[str]:
    from tasker_shared.db.connect import with_database

    name = create_database(pg_server)
    yield with_database(pg_server, name)
    drop_database(pg_server, name)


def install_release(url: str) -> None:
    """The database as the last release's migrator left it (migrations 0001-0015)."""
    release = [m for m in available_migrations() if m.version in RELEASE_CHECKSUMS]
    assert {m.version: m.checksum for m in release} == RELEASE_CHECKSUMS
    with psycopg.connect(url, autocommit=True) as conn:
        assert migrate_module._install_pgmq(conn)
        with conn.transaction():
            conn.execute(RELEASE_LEDGER)
            for m in release:
                conn.execute(m.sql)
                conn.execute("INSERT INTO tasker.schema_migrations (version, name, checksum)"
                             " VALUES (%s, %s, %s)", (m.version, m.name, m.checksum))


def ledgers(url: str) -> list[tuple[str, str, str]]:
    with psycopg.connect(url) as conn:
        return [(str(r[0]), str(r[1]), str(r[2])) for r in conn.execute(
            "SELECT 'migration', version || '_' || name, checksum FROM tasker.schema_migrations"
            " UNION ALL SELECT 'functions', name, checksum FROM tasker.schema_function_files"
            " ORDER BY 1, 2")]


def catalog(url: str) -> dict[str, list[tuple[object, ...]]]:
    with psycopg.connect(url) as conn:
        return snapshot(conn)


def routines_from_the_files_alone(conn: psycopg.Connection[tuple[object, ...]]
                                   ) -> dict[str, list[tuple[object, ...]]]:
    """The functions and views after dropping all of them and applying the files (rolled
    back afterwards)."""
    conn.execute("BEGIN")
    try:
        conn.execute(_DROP_ROUTINES)
        gone = snapshot(conn, ROUTINES)
        assert gone["views"] == []
        assert not [f for f in gone["functions"] if str(f[0]).startswith("tasker.")]
        for file in available_function_files():
            conn.execute(file.sql)
        after = snapshot(conn, ROUTINES)
    finally:
        conn.execute("ROLLBACK")
    return after


def test_scratch_and_upgraded_databases_have_the_same_catalog(
        empty_db_url: str, second_empty_db_url: str) -> None:
    scratch = migrate_database(empty_db_url)
    assert [m.version for m in scratch.migrations] == [m.version
                                                       for m in available_migrations()]
    assert [f.name for f in scratch.function_files] == list(FUNCTION_FILES)

    install_release(second_empty_db_url)
    upgrade = migrate_database(second_empty_db_url)
    assert [m.version for m in upgrade.migrations] == [
        m.version for m in available_migrations() if m.version not in RELEASE_CHECKSUMS]
    assert [f.name for f in upgrade.function_files] == list(FUNCTION_FILES)

    built, upgraded = catalog(empty_db_url), catalog(second_empty_db_url)
    assert differences(built, upgraded) == []
    assert len(built["functions"]) > 150  # tasker's and PGMQ's: the snapshot sees them
    assert any("SET enable_seqscan TO 'off'" in str(row) for row in built["functions"])
    assert ledgers(empty_db_url) == ledgers(second_empty_db_url)


def test_function_files_alone_define_every_function_and_view(db_url: str) -> None:
    """Drop every function and view of the schema, apply the files: all of it comes back
    as it was (nothing is defined only by a migration; each file needs only the ones
    before it)."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        before = snapshot(conn, ROUTINES)
        after = routines_from_the_files_alone(conn)
    assert differences(before, after) == []
    assert len(before["views"]) == 3


def test_a_function_left_out_of_the_files_is_noticed(db_url: str) -> None:
    """The check above fails for a function a file no longer defines (it must be dropped)."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("CREATE FUNCTION tasker.leftover_v1() RETURNS int LANGUAGE sql AS 'SELECT 1'")
        before = snapshot(conn, ROUTINES)
        after = routines_from_the_files_alone(conn)
    found = differences(before, after)
    assert len(found) == 1
    assert found[0].startswith("functions: only left: ('tasker.leftover_v1()'")


def test_migrations_after_the_function_files_change_the_schema_only() -> None:
    offenders = [f"{m.version}_{m.name}" for m in available_migrations()
                 if m.version > LAST_MIGRATION_WITH_FUNCTIONS
                 and _DEFINES_ROUTINES.search(_without_comments(m.sql))]
    assert offenders == [], (
        "define functions and views in shared/tasker_shared/db/sql/functions/<area>.sql, "
        "not in migrations")
    assert _DEFINES_ROUTINES.search("CREATE OR REPLACE FUNCTION tasker.x()")
    assert not _DEFINES_ROUTINES.search("DROP VIEW tasker.v; CREATE TABLE tasker.t (x int)")


def _without_comments(sql: str) -> str:
    return re.sub(r"--[^\n]*", "", sql)
