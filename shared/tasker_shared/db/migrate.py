"""Versioned SQL migrations: applied in order, recorded, advisory-locked, no-op when current.

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


@dataclass(frozen=True, kw_only=True, slots=True)
class Migration:
    version: str
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode("utf-8")).hexdigest()


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


_LEDGER = """
CREATE SCHEMA IF NOT EXISTS tasker;
CREATE TABLE IF NOT EXISTS tasker.schema_migrations (
    version text PRIMARY KEY,
    name text NOT NULL,
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
    applied_now: list[Migration] = []
    with psycopg.connect(url, autocommit=True, application_name="tasker-migrate") as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_KEY,))
        try:
            _install_pgmq(conn)
            with conn.transaction():
                conn.execute(_LEDGER)
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
                except psycopg.Error as exc:
                    raise StoreError(
                        f"migration {migration.version}_{migration.name} failed: {exc}"
                    ) from exc
                applied_now.append(migration)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK_KEY,))
    return applied_now


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
