"""Nothing the gateway answers as accepted may be lost to a database crash: before a 202 (or
a 201) the request's commit is flushed to the WAL on disk (SPEC 8: at-least-once intake).

Checked by position in the WAL: right after the request is sent, the test notes the WAL
insert position (at or past the send's commit record); once create answers, the flushed
position must have reached it. Before the fix, the "flush" before a 202 was a transaction
that wrote no WAL, which PostgreSQL commits without flushing anything."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import psycopg

from tasker_gateway.models.tasks import TaskRequestBody
from tasker_gateway.usecases import create
from tasker_shared.db.database import Database
from tests.gateway.conftest import LINEAR, running_gateway

ROUNDS = 15


class SendLsnSpy:
    """The gateway's Database, noting the WAL insert position after each request is sent."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self.after_send: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._db, name)

    async def run_autocommit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        result = await self._db.run_autocommit(fn, *args, **kwargs)
        if fn is create._send:
            row = await self._db.run_autocommit(
                lambda conn: conn.execute("SELECT pg_current_wal_insert_lsn()::text AS lsn"
                                          ).fetchone())
            self.after_send.append(row["lsn"])
        return result


def flushed_past(db_url: str, lsn: str) -> bool:
    with psycopg.connect(db_url, autocommit=True) as conn:
        row = conn.execute("SELECT pg_current_wal_flush_lsn() >= %s::pg_lsn", (lsn,)).fetchone()
    assert row is not None
    return bool(row[0])


async def _creates(db_url: str, *, ingestion: bool, wait_timeout: float,
                   expect_task: bool, **settings: Any) -> None:
    async with running_gateway(db_url, ingestion=ingestion, **settings) as gw:
        spy = SendLsnSpy(gw.ctx.db)
        ctx = replace(gw.ctx, db=spy)
        unflushed = []
        for round_ in range(ROUNDS):
            body = TaskRequestBody.model_validate(
                {**LINEAR, "context": {"even_number": 2 * (round_ + 1)}})
            outcome = await create.create_task(ctx, body, requester="test",
                                               wait_timeout=wait_timeout)
            assert (outcome.task is not None) is expect_task
            if not flushed_past(db_url, spy.after_send[-1]):
                unflushed.append(round_)
        assert len(spy.after_send) == ROUNDS
        assert not unflushed, f"answered before the request was flushed: rounds {unflushed}"


async def test_202_only_after_the_request_is_flushed(db_url: str) -> None:
    """No ingestion: every create times out waiting and answers accepted (202)."""
    await _creates(db_url, ingestion=False, wait_timeout=0.001, expect_task=False)


async def test_no_wait_202_is_flushed_even_with_asynchronous_commit(db_url: str) -> None:
    async with running_gateway(db_url, ingestion=False,
                               database={"synchronous_commit": False}) as gw:
        spy = SendLsnSpy(gw.ctx.db)
        ctx = replace(gw.ctx, db=spy)
        body = TaskRequestBody.model_validate(LINEAR)
        for _ in range(ROUNDS):
            outcome = await create.create_task(ctx, body, requester="test", wait=False)
            assert outcome.task is None
            assert flushed_past(db_url, spy.after_send[-1])


async def test_201_is_flushed_when_services_commit_asynchronously(db_url: str) -> None:
    """With `database.synchronous_commit: false` ingestion's commit does not flush; the
    gateway flushes before it answers 201."""
    await _creates(db_url, ingestion=True, wait_timeout=5.0, expect_task=True,
                   database={"synchronous_commit": False})
