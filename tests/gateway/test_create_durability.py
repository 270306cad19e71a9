"""Nothing the gateway answers as accepted may be lost to a database crash: before a 202 (or
a 201) the request's commit is flushed to the WAL on disk (SPEC 8: at-least-once intake).

Checked by the send's own commit record: the spy notes the send transaction's id and the WAL
insert position before it; once create answers, the flushed position is read, and the send's
COMMIT record (found with pg_walinspect) must end at or before it. An earlier version compared
the flushed position with `pg_current_wal_insert_lsn()` read after the send, which also counts
WAL other sessions wrote meanwhile without flushing it (async commits, on-access pruning): the
check failed now and then although the request was flushed. Before the fix, the "flush" before a
202 was a transaction that wrote no WAL, which PostgreSQL commits without flushing anything."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import psycopg

from tasker_gateway.models.tasks import TaskRequestBody
from tasker_gateway.usecases import create
from tasker_shared.db.database import Database
from tests.gateway.conftest import LINEAR, running_gateway

ROUNDS = 15


@dataclass(frozen=True, slots=True)
class Sent:
    before: str  # WAL insert position before the send began
    xid: int  # the send transaction's id


class SendSpy:
    """The gateway's Database, noting each send's transaction id. The send runs as before,
    its one statement in a transaction of its own (made explicit here so its id can be read
    before the commit; its `SET LOCAL synchronous_commit` still governs that commit)."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self.sent: list[Sent] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._db, name)

    async def run_autocommit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        if fn is not create._send:
            return await self._db.run_autocommit(fn, *args, **kwargs)

        def send(conn: Any) -> None:
            before = conn.execute("SELECT pg_current_wal_insert_lsn()::text AS lsn"
                                  ).fetchone()["lsn"]
            with conn.transaction():
                fn(conn, *args, **kwargs)
                xid = conn.execute("SELECT pg_current_xact_id()::text AS xid"
                                   ).fetchone()["xid"]
            self.sent.append(Sent(before=before, xid=int(xid)))

        await self._db.run_autocommit(send)


def flush_lsn(db_url: str) -> str:
    with psycopg.connect(db_url, autocommit=True) as conn:
        row = conn.execute("SELECT pg_current_wal_flush_lsn()::text").fetchone()
    assert row is not None
    return str(row[0])


def commit_flushed(db_url: str, sent: Sent, flushed: str) -> bool:
    """Whether the send's COMMIT record ends at or before `flushed`. The WAL is first flushed
    by a synchronous commit of this test's own, so pg_walinspect can read the record."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_walinspect")
        conn.execute("SET synchronous_commit = on")
        conn.execute("SELECT pg_logical_emit_message(true, 'tasker.test', '')")
        row = conn.execute(
            "SELECT max(end_lsn) <= %s::pg_lsn, count(*)"
            " FROM pg_get_wal_records_info(%s::pg_lsn, pg_current_wal_flush_lsn())"
            " WHERE resource_manager = 'Transaction' AND record_type LIKE 'COMMIT%%'"
            " AND xid::text = %s",
            (flushed, sent.before, str(sent.xid % 2**32))).fetchone()
    assert row is not None
    assert row[1] == 1, f"the send's commit record (xid {sent.xid}) was not found once"
    return bool(row[0])


async def _creates(db_url: str, *, ingestion: bool, wait_timeout: float,
                   expect_task: bool, **settings: Any) -> None:
    async with running_gateway(db_url, ingestion=ingestion, **settings) as gw:
        spy = SendSpy(gw.ctx.db)
        ctx = replace(gw.ctx, db=spy)
        unflushed = []
        for round_ in range(ROUNDS):
            body = TaskRequestBody.model_validate(
                {**LINEAR, "context": {"even_number": 2 * (round_ + 1)}})
            outcome = await create.create_task(ctx, body, requester="test",
                                               wait_timeout=wait_timeout)
            assert (outcome.task is not None) is expect_task
            if not commit_flushed(db_url, spy.sent[-1], flush_lsn(db_url)):
                unflushed.append(round_)
        assert len(spy.sent) == ROUNDS
        assert not unflushed, f"answered before the request was flushed: rounds {unflushed}"


async def test_202_only_after_the_request_is_flushed(db_url: str) -> None:
    """No ingestion: every create times out waiting and answers accepted (202)."""
    await _creates(db_url, ingestion=False, wait_timeout=0.001, expect_task=False)


async def test_no_wait_202_is_flushed_even_with_asynchronous_commit(db_url: str) -> None:
    async with running_gateway(db_url, ingestion=False,
                               database={"synchronous_commit": False}) as gw:
        spy = SendSpy(gw.ctx.db)
        ctx = replace(gw.ctx, db=spy)
        body = TaskRequestBody.model_validate(LINEAR)
        for _ in range(ROUNDS):
            outcome = await create.create_task(ctx, body, requester="test", wait=False)
            assert outcome.task is None
            assert commit_flushed(db_url, spy.sent[-1], flush_lsn(db_url))


async def test_201_is_flushed_when_services_commit_asynchronously(db_url: str) -> None:
    """With `database.synchronous_commit: false` ingestion's commit does not flush; the
    gateway flushes before it answers 201."""
    await _creates(db_url, ingestion=True, wait_timeout=5.0, expect_task=True,
                   database={"synchronous_commit": False})
