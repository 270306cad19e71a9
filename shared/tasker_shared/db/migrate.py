"""Schema migrations, then function files: applied in order, recorded, advisory-locked.

Migrations (sql/migrations/NNNN_name.sql) change the schema; each runs once, in its own
transaction, and is checksummed. The functions and views that run are defined in the function
files (sql/functions/<area>.sql, in FUNCTION_FILES order): after the migrations, all of them
are applied again in one transaction whenever one changed or a migration ran; their
checksums are recorded (and forgotten by every migration), so an unchanged database is left
alone.

PGMQ is installed first, from the SQL bundled in the PyPI `pgmq` package, when the `pgmq`
schema is absent (never vendored here).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from importlib.resources import files
from typing import Any

import psycopg

from tasker_shared.errors import ConfigError, StoreError

MIGRATION_LOCK_KEY = 7_245_111_001  # pg_advisory_lock key shared by every Tasker process
_FILE_RE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
# The function files in the order they are applied: a file may use what the files before it
# define (a SQL-language function or a view needs the objects it names to exist).
FUNCTION_FILES = (
    "common", "states", "readiness", "queues", "tasks", "steps", "gateway", "operations",
    "analytics", "maintenance", "dashboard",
)


def _checksum(sql: str) -> str:
    return hashlib.sha256(sql.encode("utf-8")).hexdigest()


@dataclass(frozen=True, kw_only=True, slots=True)
class Migration:
    version: str
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return _checksum(self.sql)


@dataclass(frozen=True, kw_only=True, slots=True)
class FunctionFile:
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return _checksum(self.sql)


@dataclass(frozen=True, kw_only=True, slots=True)
class MigrationResult:
    migrations: list[Migration]
    function_files: list[FunctionFile]  # empty when every file was current


@dataclass(frozen=True, kw_only=True, slots=True)
class MigrationStatus:
    version: str
    name: str
    applied_at: datetime | None


def available_migrations() -> list[Migration]:
    """The migration files shipped with the package, in version order."""
    folder = files("tasker_shared.db").joinpath("sql", "migrations")
    found: list[Migration] = []
    for entry in folder.iterdir():
        match = _FILE_RE.match(entry.name)
        if match:
            found.append(
                Migration(version=match[1], name=match[2], sql=entry.read_text(encoding="utf-8"))
            )
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise ConfigError(f"duplicate migration versions in {versions}")
    return found


def available_function_files() -> list[FunctionFile]:
    """The function files shipped with the package, in FUNCTION_FILES order."""
    folder = files("tasker_shared.db").joinpath("sql", "functions")
    found = {
        entry.name.removesuffix(".sql"): entry.read_text(encoding="utf-8")
        for entry in folder.iterdir()
        if entry.name.endswith(".sql")
    }
    unknown = sorted(set(found) - set(FUNCTION_FILES))
    missing = [name for name in FUNCTION_FILES if name not in found]
    if unknown or missing:
        raise ConfigError(
            f"function files {unknown or missing} are not where FUNCTION_FILES says: list "
            "every sql/functions/<area>.sql there, in the order they are applied"
        )
    return [FunctionFile(name=name, sql=found[name]) for name in FUNCTION_FILES]


_LEDGER = """
CREATE SCHEMA IF NOT EXISTS tasker;
CREATE TABLE IF NOT EXISTS tasker.schema_migrations (
    version text PRIMARY KEY,
    name text NOT NULL,
    checksum text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS tasker.schema_function_files (
    name text PRIMARY KEY,
    checksum text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


def _install_pgmq(conn: psycopg.Connection[tuple[Any, ...]]) -> bool:
    row = conn.execute("SELECT to_regnamespace('pgmq') IS NULL").fetchone()
    if row is None or not row[0]:
        return False
    from pgmq.install import get_embedded_install_sql

    with conn.transaction():
        conn.execute(get_embedded_install_sql())
    return True


def migrate(url: str) -> list[Migration]:
    """Bring the database at `url` up to date; return the migrations applied now."""
    return migrate_database(url).migrations


def migrate_database(url: str) -> MigrationResult:
    """Apply pending migrations, then the function files if any changed or a migration ran."""
    with psycopg.connect(url, autocommit=True, application_name="tasker-migrate") as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_KEY,))
        try:
            _install_pgmq(conn)
            with conn.transaction():
                conn.execute(_LEDGER)
            applied_now = _apply_migrations(conn)
            return MigrationResult(
                migrations=applied_now, function_files=_apply_function_files(conn)
            )
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK_KEY,))


def _apply_migrations(conn: psycopg.Connection[tuple[Any, ...]]) -> list[Migration]:
    applied_now: list[Migration] = []
    done = {
        row[0]: row[1]
        for row in conn.execute("SELECT version, checksum FROM tasker.schema_migrations")
    }
    for migration in available_migrations():
        recorded = done.get(migration.version)
        if recorded is not None:
            if recorded != migration.checksum:
                raise ConfigError(
                    f"migration {migration.version}_{migration.name} was changed after "
                    "it was applied; add a new migration instead"
                )
            continue
        try:
            with conn.transaction():
                conn.execute(migration.sql)
                conn.execute(
                    "INSERT INTO tasker.schema_migrations (version, name, checksum) "
                    "VALUES (%s, %s, %s)",
                    (migration.version, migration.name, migration.checksum),
                )
                # The function files are due again (the migration may have dropped a view
                # or function in its way); recorded with the migration, so a failure before
                # they are applied cannot skip them.
                conn.execute("DELETE FROM tasker.schema_function_files")
        except psycopg.Error as exc:
            raise StoreError(f"migration {migration.version}_{migration.name} failed: {exc}") from exc
        applied_now.append(migration)
    return applied_now


def _apply_function_files(conn: psycopg.Connection[tuple[Any, ...]]) -> list[FunctionFile]:
    """All function files, in one transaction, unless the ledger has each one's checksum.

    Every file is applied, not only the changed one: a file may drop and recreate what
    another file's objects depend on, and a migration may have dropped a view or function
    to change a table (applying a migration empties the ledger; the files bring it back).
    """
    shipped = available_function_files()
    recorded = {
        str(row[0]): str(row[1])
        for row in conn.execute("SELECT name, checksum FROM tasker.schema_function_files")
    }
    if recorded == {f.name: f.checksum for f in shipped}:
        return []
    with conn.transaction():
        for file in shipped:
            try:
                conn.execute(file.sql)
            except psycopg.Error as exc:
                raise StoreError(f"function file {file.name}.sql failed: {exc}") from exc
        conn.execute("DELETE FROM tasker.schema_function_files")
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO tasker.schema_function_files (name, checksum) VALUES (%s, %s)",
                [(f.name, f.checksum) for f in shipped],
            )
    return shipped


def migration_status(url: str) -> list[MigrationStatus]:
    """Every known migration with the time it was applied (None if pending)."""
    with psycopg.connect(url, autocommit=True, application_name="tasker-migrate") as conn:
        exists = conn.execute("SELECT to_regclass('tasker.schema_migrations') IS NOT NULL").fetchone()
        applied: dict[str, datetime] = {}
        if exists and exists[0]:
            applied = {
                row[0]: row[1]
                for row in conn.execute("SELECT version, applied_at FROM tasker.schema_migrations")
            }
    return [
        MigrationStatus(version=m.version, name=m.name, applied_at=applied.get(m.version))
        for m in available_migrations()
    ]
