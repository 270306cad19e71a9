"""The Trio database layer: transactions, real cancellation, error mapping, LISTEN/NOTIFY."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import psycopg
import pytest
import trio

from tasker_shared.db.database import Conn, Database, open_database
from tasker_shared.db.listen import RECONNECTED, Notification, NotificationListener
from tasker_shared.errors import (
    ConflictError,
    NotFoundError,
    StoreTimeout,
    TransitionRejected,
    ValidationError,
)
from tasker_shared.queue.consumer import ConsumerCounters
from tasker_shared.queue.processor import Envelope, TransactionalProcessor
from tests.integration.dag_support import DictConn


@pytest.fixture
def table(conn: DictConn) -> str:
    conn.execute("CREATE TABLE public.probe (x integer PRIMARY KEY CHECK (x >= 0))")
    return "public.probe"


def probe_values(conn: DictConn) -> list[int]:
    return [r["x"] for r in conn.execute("SELECT x FROM public.probe ORDER BY x").fetchall()]


async def test_run_commits(db: Database, conn: DictConn, table: str) -> None:
    def insert(c: Conn, value: int) -> int:
        c.execute("INSERT INTO public.probe VALUES (%s)", (value,))
        c.execute("INSERT INTO public.probe VALUES (%s)", (value + 1,))
        return value

    assert await db.run(insert, 1) == 1
    assert probe_values(conn) == [1, 2]


async def test_run_rolls_back_on_error(db: Database, conn: DictConn, table: str) -> None:
    def insert_then_fail(c: Conn) -> None:
        c.execute("INSERT INTO public.probe VALUES (7)")
        raise RuntimeError("handler failed")

    with pytest.raises(RuntimeError, match="handler failed"):
        await db.run(insert_then_fail)
    assert probe_values(conn) == []
    await db.execute("INSERT INTO public.probe VALUES (8)")  # the connection is still good
    assert probe_values(conn) == [8]


async def test_unique_violation_is_a_conflict(db: Database, table: str) -> None:
    await db.execute("INSERT INTO public.probe VALUES (1)")
    with pytest.raises(ConflictError) as info:
        await db.execute("INSERT INTO public.probe VALUES (1)")
    assert info.value.details["constraint"] == "probe_pkey"
    assert not info.value.retryable
    with pytest.raises(ValidationError):
        await db.execute("INSERT INTO public.probe VALUES (-1)")


async def test_tasker_sqlstates_map_to_error_classes(db: Database, conn: DictConn) -> None:
    with pytest.raises(NotFoundError):
        await db.execute("SELECT tasker.transition_task_v1(%s, 'pending', 'start')",
                         (uuid.uuid4(),))
    nt = conn.execute("SELECT tasker.register_template_v1('dbl', 'dbl', '1', NULL, '{}')"
                      " AS id").fetchone()
    assert nt is not None
    task = conn.execute(
        "SELECT tasker.create_task_v1(%s, jsonb_build_object('identity_hash', 'x',"
        " 'correlation_id', gen_random_uuid()), '[]', '[]') AS t", (nt["id"],)).fetchone()
    assert task is not None
    with pytest.raises(TransitionRejected):
        await db.execute("SELECT tasker.transition_task_v1(%s, 'pending', 'give_up')",
                         (task["t"],))


async def test_cancellation_stops_the_running_query(db_url: str, conn: DictConn) -> None:
    async with open_database(db_url, min_size=1, max_size=1,
                             application_name="tasker-cancel-test") as db:
        started = time.monotonic()
        with trio.move_on_after(0.2) as scope:
            await db.fetchone("SELECT pg_sleep(5)")
        elapsed = time.monotonic() - started
        assert scope.cancelled_caught
        assert elapsed < 1.0, f"cancellation took {elapsed:.2f}s"
        running = conn.execute(
            "SELECT count(*) AS n FROM pg_stat_activity WHERE application_name ="
            " 'tasker-cancel-test' AND query LIKE '%%pg_sleep%%' AND state = 'active'"
        ).fetchone()
        assert running is not None
        assert running["n"] == 0
        with trio.fail_after(2):  # the single pooled connection is reusable at once
            assert await db.fetchone("SELECT 41 + 1 AS v") == {"v": 42}
        stats = db.statistics()
        assert stats.cancellations == 1
        assert stats.in_flight == 0


async def test_statement_timeout_is_a_store_timeout(db_url: str) -> None:
    async with open_database(db_url, min_size=1, max_size=1, statement_timeout_ms=100) as db:
        started = time.monotonic()
        with pytest.raises(StoreTimeout) as info:
            await db.fetchone("SELECT pg_sleep(3)")
        assert time.monotonic() - started < 1.5
        assert info.value.retryable
        assert info.value.sqlstate == "57014"
        assert await db.fetchone("SELECT 1 AS v") == {"v": 1}


async def _expect(receive: trio.MemoryReceiveChannel[Notification], channel: str) -> Notification:
    with trio.fail_after(5):
        while True:
            item = await receive.receive()
            if item.channel == channel:
                return item


async def test_listener_receives_and_reconnects(db_url: str, conn: DictConn) -> None:
    listener = NotificationListener(db_url, ["tasker_probe", "tasker_probe"],
                                    reconnect_delay_seconds=0.05)
    assert listener.channels == ("tasker_probe",)
    send, receive = trio.open_memory_channel[Notification](100)
    async with trio.open_nursery() as nursery:
        await nursery.start(listener.run, send.send_nowait)
        conn.execute("SELECT pg_notify('tasker_probe', 'one')")
        assert (await _expect(receive, "tasker_probe")).payload == "one"

        killed = conn.execute(
            "SELECT count(pg_terminate_backend(pid)) AS n FROM pg_stat_activity"
            " WHERE application_name = 'tasker-listener' AND datname = current_database()"
        ).fetchone()
        assert killed is not None
        assert killed["n"] == 1
        await _expect(receive, RECONNECTED)
        assert listener.reconnects == 1
        assert listener.connected

        conn.execute("SELECT pg_notify('tasker_probe', 'two')")
        assert (await _expect(receive, "tasker_probe")).payload == "two"
        assert listener.received >= 2
        nursery.cancel_scope.cancel()


async def test_a_burst_of_notifications_arrives_in_order_without_holding_the_loop(
        db_url: str, conn: DictConn) -> None:
    """A thousand notifications committed together are handed over one by one, in order,
    and other tasks run while the burst is handed over."""
    listener = NotificationListener(db_url, ["tasker_burst"])
    heard: list[str] = []
    ticks: list[int] = []
    all_heard = trio.Event()

    async def ticker() -> None:  # runs whenever the listener yields
        while True:
            ticks.append(len(heard))
            await trio.lowlevel.checkpoint()

    def deliver(note: Notification) -> None:
        heard.append(note.payload)
        if len(heard) == 1000:
            all_heard.set()

    async with trio.open_nursery() as nursery:
        await nursery.start(listener.run, deliver)
        conn.execute("SELECT pg_notify('tasker_burst', i::text) FROM generate_series(1, 1000) i")
        nursery.start_soon(ticker)
        with trio.fail_after(5):
            await all_heard.wait()
        nursery.cancel_scope.cancel()
    assert heard == [str(i) for i in range(1, 1001)]
    assert any(0 < t < 1000 for t in ticks), "the loop ran only before or after the burst"


async def test_listener_keeps_retrying_while_it_cannot_connect(db_url: str) -> None:
    """A URL that cannot connect yet keeps the listener retrying instead of crashing."""
    bad = psycopg.conninfo.make_conninfo(db_url, dbname="tasker_no_such_db")
    listener = NotificationListener(bad, ["x"], reconnect_delay_seconds=0.05)
    send, _receive = trio.open_memory_channel[Notification](1)
    with trio.move_on_after(0.5):
        await listener.run(send.send_nowait)
    assert not listener.connected


async def test_cancelled_while_waiting_for_a_connection_never_runs(
        db_url: str, conn: DictConn, table: str) -> None:
    """Cancelled before it got a pooled connection: the work must not run later, and the
    cancellation must not wait for a connection to free up."""
    async with open_database(db_url, min_size=1, max_size=1) as db:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(db.execute, "SELECT pg_sleep(1)")  # holds the only connection
            await trio.sleep(0.1)
            started = time.monotonic()
            with trio.move_on_after(0.1):
                await db.execute("INSERT INTO public.probe VALUES (5)")
            assert time.monotonic() - started < 0.5
        await db.execute("INSERT INTO public.probe VALUES (6)")
    assert probe_values(conn) == [6]


async def test_run_autocommit_commits_each_statement(db: Database, conn: DictConn,
                                                    table: str) -> None:
    def insert_then_fail(c: Conn) -> None:
        c.execute("INSERT INTO public.probe VALUES (1)")
        c.execute("INSERT INTO public.probe VALUES (-1)")  # CHECK violation

    with pytest.raises(ValidationError):
        await db.run_autocommit(insert_then_fail)
    assert probe_values(conn) == [1]  # the first statement was its own transaction

    def in_transaction(c: Conn) -> bool:
        return c.autocommit

    assert await db.run(in_transaction) is False  # the connection went back transactional


async def test_processor_runs_after_commit_once_committed(db: Database, conn: DictConn,
                                                          table: str) -> None:
    queue = f"probe_{uuid.uuid4().hex[:8]}"
    conn.execute("SELECT tasker.ensure_queue_v1(%s)", (queue,))
    for n in (1, 2):
        conn.execute("SELECT tasker.send_v1(%s, %s::jsonb)", (queue, f'{{"n": {n}}}'))
    seen: list[list[int]] = []

    def handle(c: Conn, batch: list[Envelope[int]]) -> Callable[[], None]:
        cursor = c.execute("INSERT INTO public.probe SELECT unnest(%s::int[]) RETURNING x",
                           ([e.payload for e in batch],))

        def after_commit() -> None:
            seen.append(sorted(r["x"] for r in cursor.fetchall()))
            raise RuntimeError("a bug in reporting")  # logged; the batch stays committed

        return after_commit

    counters = ConsumerCounters()
    processor = TransactionalProcessor(
        db=db, queue=queue, decode=lambda m: int(m["n"]), handle=handle, counters=counters,
        max_reads=3)
    assert await processor(None, 10) == 2
    assert seen == [[1, 2]]
    assert probe_values(conn) == [1, 2]
    left = conn.execute(f"SELECT count(*) AS n FROM pgmq.q_{queue}").fetchone()
    assert left is not None and left["n"] == 0
    assert counters.processed == 2 and counters.failed == 0
