"""The connection pool under `Database`: round-trip counting connections, a liveness check
for pooled connections that costs no round trip, and reconnection attempts at most a short
interval apart.

Why not psycopg_pool's `check=`: `ConnectionPool.check_connection` is a round trip on every
checkout, and a failed check makes `getconn` sleep 1 s, 2 s, 4 s... before the next pooled
connection is tried, so a pool full of killed connections takes longer to flush than the
acquire timeout. A connection idle in the pool has nothing to read unless the server sent
something before closing it (the 57P01 "terminating connection" error, a crash's EOF): one
non-blocking poll of its socket says whether it is worth a round trip at all.
"""

from __future__ import annotations

import select
from typing import Any

import psycopg
import structlog
from psycopg import errors as pg_errors
from psycopg import pq
from psycopg.types.json import set_json_loads
from psycopg_pool import ConnectionPool
from psycopg_pool.pool import AddConnection, MaintenanceTask

from tasker_shared.domain.limits import loads_or_undecodable

Row = dict[str, Any]
log = structlog.get_logger("tasker.database")

PROBE_CONNECT_TIMEOUT = 2  # seconds: libpq's minimum; a probe must not hold recovery back


class CountingConnection(psycopg.Connection[Row]):
    """A connection that counts its round trips (statements and commits) for statistics;
    a statement run in autocommit mode counts as a commit too. `commit_sent` tells whether
    the current unit of work has asked for COMMIT (after which it may not be run again)."""

    statements = 0
    commits = 0
    commit_sent = False

    def execute(self, *args: Any, **kwargs: Any) -> Any:
        CountingConnection.statements += 1
        if self.autocommit:
            CountingConnection.commits += 1
        return super().execute(*args, **kwargs)

    def commit(self) -> None:
        self.commit_sent = True
        if self.pgconn.transaction_status != pq.TransactionStatus.IDLE:
            CountingConnection.commits += 1  # not a no-op commit outside a transaction
        super().commit()


Conn = psycopg.Connection[Row]


class Pool(ConnectionPool[CountingConnection]):
    """psycopg_pool with its reconnection backoff capped at `reconnect_interval` seconds.

    The stock pool retries a lost connection after 1, 2, 4, 8... s: after a 20 s outage the
    next attempt may come 11 s after the server is back, and a caller waits that long.
    Attempts at most `reconnect_interval` apart reconnect about that soon after the server
    answers (a refused attempt costs the server nothing)."""

    def __init__(self, *args: Any, reconnect_interval: float = 1.0, **kwargs: Any) -> None:
        self.reconnect_interval = reconnect_interval
        super().__init__(*args, **kwargs)

    def schedule_task(self, task: MaintenanceTask, delay: float) -> None:
        if isinstance(task, AddConnection):
            delay = min(delay, self.reconnect_interval)
        super().schedule_task(task, delay)


def alive(conn: Conn) -> bool:
    """Is this connection, just taken from the pool, fit to run a unit of work?

    Usually decided by one non-blocking poll of its socket (microseconds); only a socket
    that has something to read (a killed connection, rarely something harmless such as a
    TLS session ticket) costs a round trip."""
    pgconn = conn.pgconn
    if pgconn.status != pq.ConnStatus.OK:
        return False
    try:
        poller = select.poll()
        poller.register(pgconn.socket, select.POLLIN | select.POLLPRI)
        if not poller.poll(0):
            return True
        ConnectionPool.check_connection(conn)
    except (OSError, ValueError, psycopg.Error):
        return False
    return True


def connection_lost(conn: Conn, exc: BaseException) -> bool:
    """Did `exc` happen because the connection itself died (not because of the work)?"""
    if conn.broken or conn.pgconn.status != pq.ConnStatus.OK:
        return True
    if isinstance(exc, pg_errors.QueryCanceled):
        return False
    sqlstate = getattr(exc, "sqlstate", None) or ""
    # 57P01 admin shutdown, 57P02 crash shutdown, 57P03 cannot connect now; 08: connection.
    return isinstance(exc, psycopg.OperationalError) and sqlstate.startswith(("08", "57P"))


def probe(url: str, *, application_name: str) -> bool:
    """Does the server answer `SELECT 1` on a fresh connection (within a short timeout)?"""
    try:
        with psycopg.connect(url, autocommit=True, application_name=application_name,
                             connect_timeout=PROBE_CONNECT_TIMEOUT) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        log.debug("database_probe_failed", error=str(exc))
        return False
    return True


def configure(conn: Conn) -> None:
    """Every pooled connection decodes json/jsonb with `loads_or_undecodable`: one hostile
    value (nested past the recursion limit) becomes an `Undecodable` for its consumer to set
    aside, instead of failing every fetch that includes its row."""
    set_json_loads(loads_or_undecodable, conn)


def restore_transactions(conn: Conn) -> None:
    """Back to the pool's transactional mode; a connection that cannot be is discarded."""
    try:
        conn.autocommit = False
    except psycopg.Error:
        conn.close()  # the pool replaces a closed connection
