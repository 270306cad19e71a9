"""Test fixtures: a real PostgreSQL with PGMQ (the server named by TASKER_TEST_DATABASE_URL,
TASKER_DATABASE_URL or DATABASE_URL, else an embedded one), one migrated template database
per session, and a fresh database cloned from it for every test that asks."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator

import psycopg
import pytest

from tasker_shared.db.connect import start_embedded_postgres, with_database
from tasker_shared.db.database import Database, open_database
from tasker_shared.db.migrate import migrate


def _server_url() -> str:
    url = (
        os.environ.get("TASKER_TEST_DATABASE_URL")
        or os.environ.get("TASKER_DATABASE_URL")
        or os.environ.get("DATABASE_URL")
    )
    return url or start_embedded_postgres()


def _admin(url: str) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(with_database(url, "postgres"), autocommit=True)


def create_database(server: str, *, template: str | None = None) -> str:
    name = f"tasker_t_{os.getpid()}_{uuid.uuid4().hex[:10]}"
    with _admin(server) as conn:
        if template:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        else:
            conn.execute(f'CREATE DATABASE "{name}"')
    return name


def drop_database(server: str, name: str) -> None:
    with _admin(server) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def pg_server() -> str:
    """URL of the PostgreSQL server the tests use (any database on it)."""
    return _server_url()


@pytest.fixture(scope="session")
def template_database(pg_server: str) -> Iterator[str]:
    name = create_database(pg_server)
    migrate(with_database(pg_server, name))
    yield name
    drop_database(pg_server, name)


@pytest.fixture
def db_url(pg_server: str, template_database: str) -> Iterator[str]:
    """A fresh, migrated database of its own for this test."""
    name = create_database(pg_server, template=template_database)
    yield with_database(pg_server, name)
    drop_database(pg_server, name)


@pytest.fixture
def empty_db_url(pg_server: str) -> Iterator[str]:
    """A fresh database with nothing in it (for migration tests)."""
    name = create_database(pg_server)
    yield with_database(pg_server, name)
    drop_database(pg_server, name)


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    async with open_database(db_url, min_size=1, max_size=4, application_name="tasker-test") as d:
        yield d


@pytest.fixture
def conn(db_url: str) -> Iterator[psycopg.Connection[dict[str, object]]]:
    """A plain autocommit connection with dict rows, for SQL-level tests."""
    from psycopg.rows import dict_row

    with psycopg.connect(db_url, autocommit=True, row_factory=dict_row) as c:
        yield c


@pytest.fixture(scope="module")
def module_db_url(pg_server: str, template_database: str) -> Iterator[str]:
    """A fresh, migrated database shared by the tests of one module."""
    name = create_database(pg_server, template=template_database)
    yield with_database(pg_server, name)
    drop_database(pg_server, name)
