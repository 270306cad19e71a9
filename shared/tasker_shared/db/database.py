"""Trio access to PostgreSQL: a psycopg connection pool driven through worker threads.

psycopg's async API does not run under Trio, so each unit of work is ONE plain function
`fn(conn, ...)` run in ONE `trio.to_thread` call inside one transaction (STACK.md: one
thread hop per transaction, never per statement). A `CapacityLimiter` sized to the pool
keeps Trio from starting more threads than there are connections. Cancellation really
stops the query: on `trio.Cancelled` the running statement is cancelled server side
(`cancel_safe`) and the thread is awaited inside a shielded scope.

Database blips (killed connections, a restart) cost callers as little as possible: a pooled
connection is checked on checkout (`pool.alive`: one socket poll) and a dead one replaced,
never used; a transaction whose connection dies before it asked for COMMIT rolled back, so
it runs once more on a fresh connection (units of work must have no effects outside their
transaction that a second run would repeat wrongly); autocommit work is never re-run.
Neither counts as an outage. While the breaker is open callers fail fast, and one at a time
probes the server on a fresh connection; the first answer closes the breaker.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

import psycopg
import structlog
import trio
from psycopg.rows import dict_row
from psycopg_pool import PoolTimeout

from tasker_shared.db.errors import translate
from tasker_shared.db.pool import Conn as Conn
from tasker_shared.db.pool import (
    CountingConnection,
    Pool,
    alive,
    configure,
    connection_lost,
    probe,
    restore_transactions,
)
from tasker_shared.db.pool import Row as Row
from tasker_shared.errors import StoreError, StoreTimeout, StoreUnavailable

if TYPE_CHECKING:
    from tasker_shared.runtime.circuit import CircuitBreaker

P = ParamSpec("P")
T = TypeVar("T")

log = structlog.get_logger("tasker.database")


@dataclass(frozen=True, kw_only=True, slots=True)
class DatabaseStatistics:
    calls: int
    failures: int
    cancellations: int
    in_flight: int
    pool_size: int
    pool_available: int
    pool_max: int
    requests_waiting: int
    statements: int
    commits: int
    stale_discarded: int  # dead pooled connections replaced on checkout, never used
    reruns: int  # units of work run again after their connection died before COMMIT


class Database:
    """A pool of connections used from Trio; see the module docstring."""

    def __init__(
        self,
        url: str,
        *,
        min_size: int = 2,
        max_size: int = 10,
        statement_timeout_ms: int = 30_000,
        application_name: str = "tasker",
        synchronous_commit: bool = True,
        acquire_timeout_seconds: float = 10.0,
        connect_timeout_seconds: float = 10.0,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        # jit=off: every statement here is short OLTP work. On PostgreSQL < 18 the cost
        # penalty of a disabled sequential scan (hot functions disable them) lifts plans over
        # jit_above_cost, and compiling them cost more than running them (a burst ran at
        # 419 steps/s with JIT on PostgreSQL 15, 579 without).
        options = f"-c statement_timeout={int(statement_timeout_ms)} -c jit=off"
        if not synchronous_commit:
            options += " -c synchronous_commit=off"
        self.url = url
        self.max_size = max_size
        self.application_name = application_name
        self.connect_timeout_seconds = connect_timeout_seconds
        self._acquire_timeout = acquire_timeout_seconds
        self._pool = Pool(
            url,
            min_size=min_size,
            max_size=max_size,
            open=False,
            name=application_name,
            connection_class=CountingConnection,
            configure=configure,
            kwargs={
                "autocommit": False,
                "row_factory": dict_row,
                "options": options,
                "application_name": application_name,
                # libpq counts whole seconds, at least 2; unset, an attempt on an
                # unreachable host would hang for psycopg's default 130 s
                "connect_timeout": max(2, math.ceil(connect_timeout_seconds)),
            },
            timeout=acquire_timeout_seconds,
        )
        self._limiter = trio.CapacityLimiter(max_size)
        self.breaker = breaker  # fail fast with StoreUnavailable while it is open
        self._calls = 0
        self._failures = 0
        self._cancellations = 0
        self._in_flight = 0
        self._stale_discarded = 0
        self._reruns = 0

    async def open(self, *, wait_seconds: float | None = None) -> None:
        """Open the pool and wait until `min_size` connections exist (at most
        `wait_seconds`, by default `connect_timeout_seconds`)."""
        if wait_seconds is None:
            wait_seconds = self.connect_timeout_seconds

        def _open() -> None:
            try:
                self._pool.open(wait=True, timeout=wait_seconds)
            except PoolTimeout as exc:
                raise StoreUnavailable(
                    f"could not connect to the database within {wait_seconds}s", retryable=True
                ) from exc

        await trio.to_thread.run_sync(_open)

    async def close(self) -> None:
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(self._pool.close)

    async def run(
        self, fn: Callable[Concatenate[Conn, P], T], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Run `fn(conn, *args, **kwargs)` in a thread, inside one transaction."""
        return await self._run(False, fn, *args, **kwargs)

    async def run_autocommit(
        self, fn: Callable[Concatenate[Conn, P], T], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Run `fn(conn, *args, **kwargs)` in a thread with every statement committed on its
        own: no BEGIN and COMMIT round trips. For work whose statements are each a complete
        unit (typically one call of a SQL function), and for reads: under READ COMMITTED
        every statement takes its own snapshot inside a transaction too, so a read of one or
        several statements (pipelined: one round trip) loses nothing outside one."""
        return await self._run(True, fn, *args, **kwargs)

    async def _run(
        self, autocommit: bool, fn: Callable[Concatenate[Conn, P], T], /,
        *args: P.args, **kwargs: P.kwargs,
    ) -> T:
        running = _Running()

        def work() -> T:
            try:
                try:
                    return self._attempt(running, autocommit, fn, args, kwargs, rerun=False)
                except _Rerun:
                    self._reruns += 1
                    return self._attempt(running, autocommit, fn, args, kwargs, rerun=True)
            except PoolTimeout as exc:
                raise StoreUnavailable(f"no database connection available within"
                                       f" {self._acquire_timeout}s", retryable=True) from exc
            except psycopg.Error as exc:
                raise translate(exc) from exc
            finally:
                running.finished.set()

        breaker = self.breaker
        if breaker is not None and not breaker.allow() and not await self._probe(breaker):
            self._failures += 1
            raise StoreUnavailable(
                f"database circuit breaker is open; retry in {breaker.retry_after():.1f}s",
                retryable=True)
        self._calls += 1
        self._in_flight += 1
        try:
            result = await trio.to_thread.run_sync(
                work, limiter=self._limiter, abandon_on_cancel=True
            )
        except trio.Cancelled:
            self._cancellations += 1
            if running.stop():  # a statement may be running: stop it before going on
                with trio.CancelScope(shield=True):
                    await trio.to_thread.run_sync(_cancel_and_wait, running)
            raise
        except BaseException as exc:
            self._failures += 1
            if breaker is not None:
                if is_outage(exc):
                    breaker.record_failure()
                else:
                    breaker.record_success()  # the database answered
            raise
        finally:
            self._in_flight -= 1
        if breaker is not None:
            breaker.record_success()
        return result

    def _attempt(
        self, running: _Running, autocommit: bool, fn: Callable[..., T],
        args: tuple[Any, ...], kwargs: dict[str, Any], *, rerun: bool,
    ) -> T:
        """One run of `fn` on a live pooled connection (in the worker thread). Raises
        `_Rerun` when the connection died under a transaction that never asked for COMMIT
        (and this is not already the second run)."""
        conn = self._checkout()
        try:
            if not running.attach(conn):
                raise _Abandoned  # cancelled while waiting for the connection
            try:
                if autocommit:
                    conn.autocommit = True
                with conn:  # commit on success, roll back on error (the pool's own way)
                    return fn(conn, *args, **kwargs)
            except psycopg.Error as exc:
                if rerun or autocommit or conn.commit_sent or not connection_lost(conn, exc):
                    raise
                log.info("database_connection_lost", action="rerun", error=str(exc))
                raise _Rerun from exc
            finally:
                running.detach()
                if autocommit:
                    restore_transactions(conn)
        finally:
            self._pool.putconn(conn)

    def _checkout(self) -> CountingConnection:
        """A pooled connection that passes `alive`; dead ones are closed (the pool replaces
        them) without counting against the call."""
        deadline = time.monotonic() + self._acquire_timeout
        while True:
            conn = self._pool.getconn(timeout=max(0.01, deadline - time.monotonic()))
            if alive(conn):
                conn.commit_sent = False
                return conn
            self._stale_discarded += 1
            conn.close()
            self._pool.putconn(conn)

    async def _probe(self, breaker: CircuitBreaker) -> bool:
        """While the breaker is open: if a probe is due, `SELECT 1` on a fresh connection;
        True (and the breaker closed) when the database answered."""
        if not breaker.begin_probe():
            return False
        ok = False
        try:
            ok = await trio.to_thread.run_sync(
                lambda: probe(self.url, application_name=f"{self.application_name}-probe"),
                abandon_on_cancel=True)
        finally:
            breaker.end_probe(ok)
        if ok:
            log.info("database_reachable", action="probe", breaker=breaker.name)
        return ok

    async def fetchall(self, query: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[Row]:
        return await self.run(_fetchall, query, params)

    async def fetchone(
        self, query: str, params: Sequence[Any] | dict[str, Any] = ()
    ) -> Row | None:
        return await self.run(_fetchone, query, params)

    async def execute(self, query: str, params: Sequence[Any] | dict[str, Any] = ()) -> None:
        await self.run(_execute, query, params)

    def statistics(self) -> DatabaseStatistics:
        stats = self._pool.get_stats()
        return DatabaseStatistics(
            calls=self._calls,
            failures=self._failures,
            cancellations=self._cancellations,
            in_flight=self._in_flight,
            pool_size=stats.get("pool_size", 0),
            pool_available=stats.get("pool_available", 0),
            pool_max=self.max_size,
            requests_waiting=stats.get("requests_waiting", 0),
            statements=CountingConnection.statements,
            commits=CountingConnection.commits,
            stale_discarded=self._stale_discarded,
            reruns=self._reruns,
        )


def is_outage(exc: BaseException) -> bool:
    """Does this failure say the database is unreachable or overwhelmed (breaker-worthy)?"""
    if isinstance(exc, (StoreUnavailable, StoreTimeout)):
        return True
    return isinstance(exc, StoreError) and (exc.sqlstate or "").startswith(("08", "53", "57P"))


class _Abandoned(Exception):
    """The caller was cancelled before the work got its connection; it never ran."""


class _Rerun(Exception):
    """The connection died before the unit of work asked for COMMIT: run it once more."""


class _Running:
    """The connection one `Database.run` call works on, shared with its cancel path."""

    __slots__ = ("_lock", "_stopped", "conn", "finished")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stopped = False
        self.conn: Conn | None = None
        self.finished = threading.Event()

    def attach(self, conn: Conn) -> bool:
        """Record the connection; False if the call was cancelled meanwhile."""
        with self._lock:
            if self._stopped:
                return False
            self.conn = conn
            return True

    def detach(self) -> None:
        with self._lock:
            self.conn = None

    def stop(self) -> bool:
        """Forbid starting the work; True when it already runs on a connection."""
        with self._lock:
            self._stopped = True
            return self.conn is not None


def _cancel_and_wait(running: _Running) -> None:
    deadline = time.monotonic() + 10.0
    while not running.finished.is_set() and time.monotonic() < deadline:
        conn = running.conn
        if conn is not None:
            try:
                conn.cancel_safe(timeout=2.0)
            except Exception:  # best effort; the statement timeout still applies
                pass
        running.finished.wait(0.05)


def _fetchall(conn: Conn, query: str, params: Sequence[Any] | dict[str, Any]) -> list[Row]:
    return conn.execute(query, params).fetchall()


def _fetchone(conn: Conn, query: str, params: Sequence[Any] | dict[str, Any]) -> Row | None:
    return conn.execute(query, params).fetchone()


def _execute(conn: Conn, query: str, params: Sequence[Any] | dict[str, Any]) -> None:
    conn.execute(query, params)


@asynccontextmanager
async def open_database(
    url: str,
    *,
    min_size: int = 2,
    max_size: int = 10,
    statement_timeout_ms: int = 30_000,
    application_name: str = "tasker",
    synchronous_commit: bool = True,
    connect_timeout_seconds: float = 10.0,
    breaker: CircuitBreaker | None = None,
) -> AsyncIterator[Database]:
    """A `Database` opened for the duration of the block and closed (shielded) after."""
    db = Database(url, min_size=min_size, max_size=max_size,
                  statement_timeout_ms=statement_timeout_ms, application_name=application_name,
                  synchronous_commit=synchronous_commit,
                  connect_timeout_seconds=connect_timeout_seconds, breaker=breaker)
    await db.open()
    try:
        yield db
    finally:
        await db.close()
