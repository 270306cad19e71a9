"""Trio access to PostgreSQL: a psycopg connection pool driven through worker threads.

psycopg's async API does not run under Trio, so each unit of work is ONE plain function
`fn(conn, ...)` run in ONE `trio.to_thread` call inside one transaction (STACK.md: one
thread hop per transaction, never per statement). A `CapacityLimiter` sized to the pool
keeps Trio from starting more threads than there are connections. Cancellation really
stops the query: on `trio.Cancelled` the running statement is cancelled server side
(`cancel_safe`) and the thread is awaited inside a shielded scope.
"""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

import psycopg
import trio
from psycopg.rows import dict_row
from psycopg.types.json import set_json_loads
from psycopg_pool import ConnectionPool, PoolTimeout

from tasker_shared.db.errors import translate
from tasker_shared.domain.limits import loads_or_undecodable
from tasker_shared.errors import StoreError, StoreTimeout, StoreUnavailable

if TYPE_CHECKING:
    from tasker_shared.runtime.circuit import CircuitBreaker

P = ParamSpec("P")
T = TypeVar("T")

Row = dict[str, Any]


class CountingConnection(psycopg.Connection[Row]):
    """A connection that counts its round trips (statements and commits) for statistics;
    a statement run in autocommit mode counts as a commit too."""

    statements = 0
    commits = 0

    def execute(self, *args: Any, **kwargs: Any) -> Any:
        CountingConnection.statements += 1
        if self.autocommit:
            CountingConnection.commits += 1
        return super().execute(*args, **kwargs)

    def commit(self) -> None:
        if self.pgconn.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            CountingConnection.commits += 1  # not a no-op commit outside a transaction
        super().commit()


Conn = psycopg.Connection[Row]


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
        self._acquire_timeout = acquire_timeout_seconds
        self._pool: ConnectionPool[Conn] = ConnectionPool(
            url,
            min_size=min_size,
            max_size=max_size,
            open=False,
            name=application_name,
            connection_class=CountingConnection,
            configure=_configure,
            kwargs={
                "autocommit": False,
                "row_factory": dict_row,
                "options": options,
                "application_name": application_name,
            },
            timeout=acquire_timeout_seconds,
        )
        self._limiter = trio.CapacityLimiter(max_size)
        self.breaker = breaker  # fail fast with StoreUnavailable while it is open
        self._calls = 0
        self._failures = 0
        self._cancellations = 0
        self._in_flight = 0

    async def open(self, *, wait_seconds: float = 30.0) -> None:
        """Open the pool and wait until `min_size` connections exist."""

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
                with self._pool.connection(timeout=self._acquire_timeout) as conn:
                    if not running.attach(conn):
                        raise _Abandoned  # cancelled while waiting for the connection
                    if autocommit:
                        conn.autocommit = True
                    try:
                        return fn(conn, *args, **kwargs)
                    finally:
                        running.detach()
                        if autocommit:
                            _restore_transactions(conn)
            except PoolTimeout as exc:
                raise StoreUnavailable(
                    f"no database connection available within {self._acquire_timeout}s",
                    retryable=True,
                ) from exc
            except psycopg.Error as exc:
                raise translate(exc) from exc
            finally:
                running.finished.set()

        breaker = self.breaker
        if breaker is not None and not breaker.allow():
            self._failures += 1
            raise StoreUnavailable(
                f"database circuit breaker is open; retry in {breaker.retry_after():.0f}s",
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
        )


def is_outage(exc: BaseException) -> bool:
    """Does this failure say the database is unreachable or overwhelmed (breaker-worthy)?"""
    if isinstance(exc, (StoreUnavailable, StoreTimeout)):
        return True
    return isinstance(exc, StoreError) and (exc.sqlstate or "").startswith(("08", "53", "57P"))


class _Abandoned(Exception):
    """The caller was cancelled before the work got its connection; it never ran."""


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


def _configure(conn: Conn) -> None:
    """Every pooled connection decodes json/jsonb with `loads_or_undecodable`: one hostile
    value (nested past the recursion limit) becomes an `Undecodable` for its consumer to set
    aside, instead of failing every fetch that includes its row."""
    set_json_loads(loads_or_undecodable, conn)


def _restore_transactions(conn: Conn) -> None:
    """Back to the pool's transactional mode; a connection that cannot be is discarded."""
    try:
        conn.autocommit = False
    except psycopg.Error:
        conn.close()  # the pool replaces a closed connection


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
    breaker: CircuitBreaker | None = None,
) -> AsyncIterator[Database]:
    """A `Database` opened for the duration of the block and closed (shielded) after."""
    db = Database(
        url,
        min_size=min_size,
        max_size=max_size,
        statement_timeout_ms=statement_timeout_ms,
        application_name=application_name,
        synchronous_commit=synchronous_commit,
        breaker=breaker,
    )
    await db.open()
    try:
        yield db
    finally:
        await db.close()
