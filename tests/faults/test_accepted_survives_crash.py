"""Task requests the gateway answered 202 (accepted) survive a PostgreSQL crash (kill -9 of
every server process) that follows the answer at once.

The server's WAL writer is slowed to one round per 10 s, so only a commit that waits for
its flush puts a request on disk in time; before the fix, the last requests answered 202
were still in the server's WAL buffers when it died and were lost."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
import trio

from tasker_gateway.models.tasks import TaskRequestBody
from tasker_gateway.usecases import create
from tasker_shared.db.migrate import migrate
from tests.faults.own_postgres import OwnPostgres
from tests.gateway.conftest import LINEAR, running_gateway

REQUESTS = 8


@pytest.fixture
def slow_wal_postgres() -> Iterator[OwnPostgres]:
    pg = OwnPostgres()
    try:
        with (pg.data / "postgresql.conf").open("a") as conf:
            conf.write("wal_writer_delay = 10000\n")  # 10 s, the most PostgreSQL allows
        pg.start()
        migrate(pg.url)
        yield pg
    finally:
        pg.destroy()


async def test_requests_answered_202_survive_a_crash(slow_wal_postgres: OwnPostgres) -> None:
    pg = slow_wal_postgres
    accepted = []
    async with running_gateway(pg.url, ingestion=False) as gw:  # nothing ingests: all 202
        body = TaskRequestBody.model_validate(LINEAR)
        for _ in range(REQUESTS):
            outcome = await create.create_task(gw.ctx, body, requester="test",
                                               wait_timeout=0.001)
            assert outcome.task is None
            accepted.append(outcome.request_id)
        await trio.to_thread.run_sync(pg.crash)
    await trio.to_thread.run_sync(pg.start)
    with psycopg.connect(pg.url, autocommit=True) as conn:
        rows = conn.execute("SELECT message ->> 'request_id' FROM"
                            " pgmq.q_orchestration_task_requests").fetchall()
    survived = {row[0] for row in rows}
    lost = [rid for rid in accepted if rid not in survived]
    assert not lost, f"{len(lost)} of {REQUESTS} accepted requests lost: {lost}"
