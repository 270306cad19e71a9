"""Database blips (issue 12, item 2): connections killed with pg_terminate_backend (only this
test's own database), and a server that goes away and comes back (a TCP proxy in front of
it), must cost `Database` callers no failures where none is needed, and no outage longer
than about a second once the server answers again."""

from __future__ import annotations

import socket
import time

import psycopg
import pytest
import trio
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import dict_row

from tasker_shared.db.database import Conn, Database, open_database
from tasker_shared.db.pool import Pool, probe
from tasker_shared.errors import StoreUnavailable
from tasker_shared.runtime.circuit import CircuitBreaker, CircuitState
from tasker_shared.runtime.service import service_runtime
from tests.integration.tcp_proxy import TcpProxy
from tests.support import service_settings

APP = "tasker-blip"


def _terminate(url: str, application_name: str = APP) -> int:
    """pg_terminate_backend of every connection of this test's database named so."""
    with psycopg.connect(url, autocommit=True) as admin:
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND application_name = %s"
            " AND pid <> pg_backend_pid()", (application_name,)).fetchall()
        for _ in range(500):  # until the backends are gone (they exit asynchronously)
            (left,) = admin.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND application_name = %s AND pid <> pg_backend_pid()",
                (application_name,)).fetchone() or (0,)
            if not left:
                break
            admin.execute("SELECT pg_sleep(0.01)")
    return len(rows)


def _hold(conn: Conn) -> int:
    row = conn.execute("SELECT pg_backend_pid() AS pid, pg_sleep(0.05)").fetchone()
    assert row is not None
    return int(row["pid"])


async def _use_every_connection(db: Database, n: int) -> set[int]:
    pids: set[int] = set()

    async def one() -> None:
        pids.add(await db.run(_hold))

    async with trio.open_nursery() as nursery:
        for _ in range(n):
            nursery.start_soon(one)
    return pids


async def test_killed_pooled_connections_never_reach_a_call(db_url: str) -> None:
    # One failure counted as an outage would open this breaker (and it has no probe).
    breaker = CircuitBreaker("database", failure_threshold=1, timeout_seconds=60)
    async with open_database(db_url, min_size=3, max_size=3, application_name=APP,
                             breaker=breaker) as db:
        for _ in range(3):  # three rounds, every connection of the pool killed each time
            assert len(await _use_every_connection(db, 3)) == 3
            assert _terminate(db_url) == 3
            for _ in range(5):
                assert await db.fetchone("SELECT 1 AS one") == {"one": 1}
            assert len(await _use_every_connection(db, 3)) == 3
        stats = db.statistics()
        assert breaker.state is CircuitState.CLOSED and breaker.total_failures == 0
        assert stats.failures == 0 and stats.stale_discarded == 9 and stats.reruns == 0


async def test_transaction_whose_connection_dies_runs_once_more(
        db: Database, conn: psycopg.Connection[dict[str, object]]) -> None:
    conn.execute("CREATE TABLE blip (run int)")
    runs: list[int] = []

    def insert_then_die(c: Conn) -> str:
        runs.append(len(runs) + 1)
        c.execute("INSERT INTO blip VALUES (%s)", (len(runs),))
        if len(runs) == 1:  # the server kills the connection in mid-transaction
            c.execute("SELECT pg_terminate_backend(pg_backend_pid())")
        return "done"

    db.breaker = CircuitBreaker("database", failure_threshold=1)
    assert await db.run(insert_then_die) == "done"
    # The first run's insert rolled back with its connection: the work is there once.
    assert runs == [1, 2]
    assert conn.execute("SELECT array_agg(run) AS r FROM blip").fetchone() == {"r": [2]}
    assert db.statistics().reruns == 1 and db.breaker.total_failures == 0

    runs.clear()

    def always_die(c: Conn) -> None:
        runs.append(1)
        c.execute("SELECT pg_terminate_backend(pg_backend_pid())")

    with pytest.raises(StoreUnavailable):  # once more only, then it is a real failure
        await db.run(always_die)
    assert runs == [1, 1] and db.breaker.state is CircuitState.OPEN


async def test_work_that_may_have_committed_is_not_run_again(
        db: Database, conn: psycopg.Connection[dict[str, object]]) -> None:
    conn.execute("CREATE TABLE blip (run int)")
    runs: list[str] = []

    def autocommit_insert_then_die(c: Conn) -> None:
        runs.append("autocommit")
        c.execute("INSERT INTO blip VALUES (1)")  # committed on its own
        c.execute("SELECT pg_terminate_backend(pg_backend_pid())")

    with pytest.raises(StoreUnavailable):
        await db.run_autocommit(autocommit_insert_then_die)

    def commit_then_die(c: Conn) -> None:
        runs.append("committed")
        c.execute("INSERT INTO blip VALUES (2)")
        c.commit()
        c.execute("SELECT pg_terminate_backend(pg_backend_pid())")

    with pytest.raises(StoreUnavailable):
        await db.run(commit_then_die)
    assert runs == ["autocommit", "committed"]
    assert conn.execute("SELECT array_agg(run ORDER BY run) AS r FROM blip").fetchone() == {
        "r": [1, 2]}
    assert db.statistics().reruns == 0
    assert await db.fetchone("SELECT 1 AS one") == {"one": 1}  # the pool is whole again


async def test_three_rounds_of_kills_under_load(db_url: str) -> None:
    breaker = CircuitBreaker("database", failure_threshold=5, timeout_seconds=60)
    failures: list[BaseException] = []
    done = 0

    def work(c: Conn) -> None:
        c.execute("SELECT pg_sleep(0.002)")

    async def load(stop: trio.Event) -> None:
        nonlocal done
        while not stop.is_set():
            try:
                await db.run(work)
                done += 1
            except StoreUnavailable as exc:
                failures.append(exc)

    async with open_database(db_url, min_size=3, max_size=3, application_name=APP,
                             breaker=breaker) as db:
        stop = trio.Event()
        async with trio.open_nursery() as nursery:
            for _ in range(3):
                nursery.start_soon(load, stop)
            for _ in range(3):  # three rounds in about two seconds
                await trio.sleep(0.6)
                await trio.to_thread.run_sync(_terminate, db_url)
            before = done
            await trio.sleep(0.3)
            stop.set()
        assert done > before  # work went on right after the last round
        # Only a transaction caught at its COMMIT may fail; never the breaker.
        assert len(failures) < 5 and breaker.state is CircuitState.CLOSED
        assert all("terminat" in str(f) or "closed" in str(f) for f in failures), failures
        for _ in range(10):
            assert await db.fetchone("SELECT 1 AS one") == {"one": 1}
        assert db.statistics().stale_discarded + db.statistics().reruns >= 3


class Clock:
    now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_open_breaker_probes_a_fresh_connection(db: Database) -> None:
    clock = Clock()
    breaker = CircuitBreaker("database", failure_threshold=1, timeout_seconds=60,
                             probe_interval_seconds=1, clock=clock)
    db.breaker = breaker
    breaker.record_failure()
    with pytest.raises(StoreUnavailable, match=r"retry in 1\.0s"):
        await db.fetchone("SELECT 1")  # no probe due yet: fails fast
    clock.now += 1
    # The call finds a probe due, the database answers, the breaker closes and the call runs.
    assert await db.fetchone("SELECT 1 AS one") == {"one": 1}
    assert breaker.state is CircuitState.CLOSED and breaker.probes == 1

    nowhere = Database("postgresql://postgres@127.0.0.1:1/none", min_size=1, max_size=1,
                       breaker=CircuitBreaker("database", failure_threshold=1,
                                              probe_interval_seconds=1, clock=clock))
    assert nowhere.breaker is not None
    nowhere.breaker.record_failure()
    clock.now += 1
    with pytest.raises(StoreUnavailable, match="circuit breaker is open"):
        await nowhere.fetchone("SELECT 1")  # probed, refused, still open; no pool touched
    assert nowhere.breaker.probes_failed == 1 and nowhere.breaker.state is CircuitState.OPEN
    assert not probe("postgresql://postgres@127.0.0.1:1/none", application_name="t")


async def test_server_down_and_back_recovers_within_a_second_or_two(db_url: str) -> None:
    proxy = TcpProxy(db_url)
    breaker = CircuitBreaker("database", failure_threshold=2, timeout_seconds=60,
                             probe_interval_seconds=0.2)
    async with trio.open_nursery() as nursery:
        await proxy.up(nursery)
        db = Database(proxy.proxied_url, min_size=2, max_size=2, application_name=APP,
                      acquire_timeout_seconds=1, connect_timeout_seconds=2, breaker=breaker)
        await db.open()
        try:
            assert await db.fetchone("SELECT 1 AS one") == {"one": 1}
            proxy.down()  # the server stops: connections dropped, new ones refused
            for _ in range(2):
                with pytest.raises(StoreUnavailable):
                    await db.fetchone("SELECT 1")
            assert breaker.state is CircuitState.OPEN
            # Long enough for stock psycopg_pool to space its reconnection attempts 4 s
            # apart (and for a 30 s breaker to matter).
            await trio.sleep(4)
            with pytest.raises(StoreUnavailable):
                await db.fetchone("SELECT 1")
            await proxy.up(nursery)
            back = trio.current_time()
            while True:
                try:
                    assert await db.fetchone("SELECT 1 AS one") == {"one": 1}
                    break
                except StoreUnavailable:
                    await trio.sleep(0.05)
            recovery = trio.current_time() - back
            print(f"recovery after the server came back: {recovery:.2f}s")
            assert recovery < 3.0  # target 5 s; probe 0.2 s + reconnection within 1 s
            assert breaker.state is CircuitState.CLOSED
            with psycopg.connect(db_url, row_factory=dict_row) as check:
                row = check.execute("SELECT 1 AS one").fetchone()
            assert row == {"one": 1}
        finally:
            await db.close()
            nursery.cancel_scope.cancel()


def test_pool_retries_connecting_at_its_reconnect_interval() -> None:
    pool = Pool("postgresql://postgres@127.0.0.1:1/none", min_size=1, max_size=1, open=False,
                reconnect_interval=0.1, kwargs={"connect_timeout": 2})
    pool.open(wait=False)
    try:
        time.sleep(1.0)
        errors = pool.get_stats().get("connections_errors", 0)
    finally:
        pool.close(timeout=1)
    # Stock psycopg_pool tries at 0, 1, 3, 7, 15... s: twice in the first second.
    assert errors >= 5


async def test_connect_timeout_is_honoured() -> None:
    # A server that accepts TCP connections and never answers (a hung host, a black hole).
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        port = silent.getsockname()[1]
        db = Database(f"postgresql://postgres@127.0.0.1:{port}/none", min_size=1, max_size=1,
                      connect_timeout_seconds=2)
        started = trio.current_time()
        with pytest.raises(StoreUnavailable, match="within 2"):
            await db.open()  # start-up waits connect_timeout_seconds, not 30 s
        assert trio.current_time() - started < 10
        await trio.sleep(1)
        # The attempt itself gave up after 2 s (libpq would wait 130 s without a timeout).
        assert db.statistics().pool_size <= 1
        assert db._pool.get_stats().get("connections_errors", 0) >= 1
        await db.close()


async def test_service_connections_carry_the_connect_timeout(db_url: str) -> None:
    settings = service_settings(db_url, database={"connect_timeout_seconds": 2.5})
    async with service_runtime("blip-timeout", settings) as rt:
        assert conninfo_to_dict(rt.url)["connect_timeout"] == "3"  # whole seconds, rounded up
