"""What a workload cost: CPU of the Tasker processes and of this database's PostgreSQL
backends, commits, write transactions and WAL bytes, measured over one window.

CPU: psutil cpu_times (user + system) of each Tasker service process and its children, and of
every backend connected to the benchmark's database (pids from pg_stat_activity; PostgreSQL
runs on this host), sampled every 0.2 s so a backend that leaves mid-window still counts up
to its last sample. The measuring connections' own backends are left out, and so are
PostgreSQL's background processes (WAL writer, checkpointer: shared with other databases).

Transactions: `xact_commit` of pg_stat_database for this database (every commit, read-only
ones included; backends publish it within about a second, so the window's ends wait for it).
WAL: the server's pg_current_wal_lsn() delta (every database on the server); and, where the
pg_walinspect extension can be created, the WAL records of this database alone (records whose
blocks live in it, and the commit records of the transactions that wrote them), which also
count its write transactions exactly. A temporary physical replication slot of the measuring
session keeps the window's WAL until it is read (dropped with the session).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

import psutil
import psycopg

SAMPLE_SECONDS = 0.2
STATS_SETTLE_SECONDS = 1.2  # backends publish their xact counters within PGSTAT_MIN_INTERVAL

# Every WAL record between two positions that belongs to this database: its own blocks, or
# a record (commit included) of a transaction that wrote one of its blocks.
_OUR_WAL = """
WITH r AS (
    SELECT xid, resource_manager, record_type, (end_lsn - start_lsn)::bigint AS bytes,
           block_ref LIKE %(needle)s AS ours
      FROM pg_get_wal_records_info(%(start)s::pg_lsn, %(end)s::pg_lsn)),
x AS (SELECT DISTINCT xid FROM r WHERE ours AND xid <> '0')
SELECT COALESCE(sum(r.bytes), 0)::bigint,
       count(*) FILTER (WHERE r.resource_manager = 'Transaction'
                          AND r.record_type LIKE 'COMMIT%%')
  FROM r WHERE r.ours OR r.xid IN (SELECT xid FROM x)"""


# The same window's WAL by the relation (table or index) whose blocks each record touched:
# where the bytes of a step go (the biggest first; records without blocks, commits among
# them, are left out).
_WAL_BY_RELATION = """
WITH r AS (
    SELECT (end_lsn - start_lsn)::bigint AS bytes,
           substring(block_ref FROM 'rel [0-9]+/([0-9]+)/')::oid AS db,
           substring(block_ref FROM 'rel [0-9]+/[0-9]+/([0-9]+)')::oid AS node
      FROM pg_get_wal_records_info(%(start)s::pg_lsn, %(end)s::pg_lsn))
SELECT COALESCE(c.relname::text, 'relfilenode ' || r.node), sum(r.bytes)::bigint
  FROM r LEFT JOIN pg_class c ON c.relfilenode = r.node
 WHERE r.db = (SELECT oid FROM pg_database WHERE datname = current_database())
 GROUP BY 1 ORDER BY 2 DESC LIMIT %(limit)s"""


@dataclass(frozen=True, kw_only=True, slots=True)
class Cost:
    """A window's totals (CPU in seconds)."""
    seconds: float
    cpu_tasker: float
    cpu_postgres: float
    backends: int
    commits: int | None  # None where no PostgreSQL database was measured
    wal_server: int | None
    wal_database: int | None  # None without pg_walinspect
    write_transactions: int | None
    wal_relations: tuple[tuple[str, int], ...] = ()  # (relation, bytes), the biggest first

    def per_step(self, steps: int) -> dict[str, float | None]:
        def each(value: float | None) -> float | None:
            return None if value is None else value / steps
        return {"cpu_ms": 1000 * (self.cpu_tasker + self.cpu_postgres) / steps,
                "cpu_tasker_ms": 1000 * self.cpu_tasker / steps,
                "cpu_postgres_ms": 1000 * self.cpu_postgres / steps,
                "commits": each(self.commits),
                "write_xacts": each(self.write_transactions),
                "wal_server": each(self.wal_server),
                "wal_database": each(self.wal_database)}


def _cpu(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return float(times.user + times.system)


class Meter:
    """`with Meter(url, pids) as meter: ...; cost = meter.cost` measures the with-block.

    `pids` are the Tasker service processes (their children are included), or a peer
    system's processes. `url` None: a system without PostgreSQL, CPU of `pids` only (commits
    and WAL None). Call `stop()`
    the moment the workload is done, so the settle wait adds no idle CPU. `settle`: how long
    to wait at both ends for backends to publish their commit counters."""

    def __init__(self, url: str | None, pids: list[int], *,
                 settle: float = STATS_SETTLE_SECONDS) -> None:
        self.url = url
        self.settle = settle if url else 0.0
        self.roots = [psutil.Process(pid) for pid in pids]
        self.cost: Cost | None = None
        self._conn = psycopg.connect(url, autocommit=True) if url else None
        self._walinspect = self._conn is not None and has_walinspect(self._conn)
        self._first: dict[tuple[str, int], float] = {}
        self._last: dict[tuple[str, int], float] = {}
        self._backends: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._sampler_conn: psycopg.Connection[Any] | None = None
        self._started = 0.0
        self._stopped = 0.0
        self._start_lsn = self._start_commits = ""

    def _counters(self) -> tuple[str, str]:
        if self._conn is None:
            return "", ""
        row = self._conn.execute(
            "SELECT pg_current_wal_lsn()::text, xact_commit::text FROM pg_stat_database"
            " WHERE datname = current_database()").fetchone()
        assert row is not None
        return str(row[0]), str(row[1])

    def _processes(self) -> list[tuple[str, psutil.Process]]:
        procs: list[tuple[str, psutil.Process]] = []
        for root in self.roots:
            try:
                procs.append(("tasker", root))
                procs.extend(("tasker", child) for child in root.children(recursive=True))
            except psutil.Error:
                continue
        if self._sampler_conn is None or self._conn is None:
            return procs
        rows = self._sampler_conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
            " AND backend_type = 'client backend' AND pid <> ALL (%s)",
            ([self._conn.info.backend_pid, self._sampler_conn.info.backend_pid],)).fetchall()
        for (pid,) in rows:
            try:
                procs.append(("postgres", psutil.Process(pid)))
                self._backends.add(pid)
            except psutil.Error:
                continue
        return procs

    def _sample(self, *, first: bool = False) -> None:
        for kind, proc in self._processes():
            key = (kind, proc.pid)
            try:
                value = _cpu(proc)
                if key not in self._first:  # born inside the window: all of its CPU counts
                    born_inside = not first and proc.create_time() >= self._started - 1.0
                    self._first[key] = 0.0 if born_inside else value
                self._last[key] = value
            except psutil.Error:
                continue

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_SECONDS):
            self._sample()

    def __enter__(self) -> Meter:
        time.sleep(self.settle)  # what came before is published
        if self.url:
            self._sampler_conn = psycopg.connect(self.url, autocommit=True)
        if self._walinspect:
            self._keep_wal()
        self._start_lsn, self._start_commits = self._counters()
        self._started = time.time()
        self._sample(first=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """End the CPU window now (idempotent)."""
        if self._stopped:
            return
        self._stop.set()
        self._thread.join()
        self._sample()
        self._stopped = time.time()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        cpu = {"tasker": 0.0, "postgres": 0.0}
        for key, last in self._last.items():
            cpu[key[0]] += max(0.0, last - self._first.get(key, last))
        commits = wal_server = wal_db = writes = None
        relations: tuple[tuple[str, int], ...] = ()
        if self._conn is not None:
            commits, wal_server, wal_db, writes, relations = self._database_totals(self._conn)
        self.cost = Cost(seconds=self._stopped - self._started, cpu_tasker=cpu["tasker"],
                         cpu_postgres=cpu["postgres"], backends=len(self._backends),
                         commits=commits, wal_server=wal_server, wal_database=wal_db,
                         write_transactions=writes, wal_relations=relations)
        if self._sampler_conn is not None:
            self._sampler_conn.close()
        if self._conn is not None:
            self._conn.close()

    def _database_totals(self, conn: psycopg.Connection[Any]) -> tuple[
            int, int, int | None, int | None, tuple[tuple[str, int], ...]]:
        """The window's commits, server WAL bytes, this database's WAL bytes and write
        transactions (None without pg_walinspect) and its WAL by relation."""
        end_lsn, _ = self._counters()
        time.sleep(self.settle)  # the window's commits are published
        _, end_commits = self._counters()
        wal_db = writes = None
        relations: tuple[tuple[str, int], ...] = ()
        if self._walinspect and self._flushed(end_lsn):
            try:
                row = conn.execute(_OUR_WAL, {
                    "start": self._start_lsn, "end": end_lsn,
                    "needle": f"%/{self._dboid()}/%"},
                ).fetchone()
                assert row is not None
                wal_db, writes = int(row[0]), int(row[1])
                relations = tuple((str(name), int(size)) for name, size in conn.execute(
                    _WAL_BY_RELATION, {"start": self._start_lsn, "end": end_lsn,
                                       "limit": 12}).fetchall())
            except psycopg.Error as exc:  # WAL already recycled, or no permission
                print(f"pg_walinspect: {exc}", file=sys.stderr)
        row = conn.execute("SELECT (%s::pg_lsn - %s::pg_lsn)::bigint",
                           (end_lsn, self._start_lsn)).fetchone()
        assert row is not None
        return (int(end_commits) - int(self._start_commits), int(row[0]), wal_db, writes,
                relations)

    def _keep_wal(self) -> None:
        """Keep the window's WAL until it is read: checkpoints (every DROP DATABASE of other
        work on the server forces one) remove old segments within seconds. A temporary
        physical slot of this session holds it; it goes when the session ends."""
        try:
            self._conn.execute("SELECT pg_create_physical_replication_slot(%s, true, true)",
                               (f"tasker_bench_meter_{os.getpid()}_{id(self)}",))
        except psycopg.Error as exc:
            print(f"no replication slot to keep the WAL ({exc}); pg_walinspect may miss it",
                  file=sys.stderr)

    def _flushed(self, lsn: str, timeout: float = 5.0) -> bool:
        """Wait until the WAL up to `lsn` is flushed (pg_walinspect reads no further)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            row = self._conn.execute("SELECT pg_current_wal_flush_lsn() >= %s::pg_lsn",
                                     (lsn,)).fetchone()
            if row is not None and row[0]:
                return True
            time.sleep(0.05)
        return False

    def _dboid(self) -> int:
        row = self._conn.execute(
            "SELECT oid FROM pg_database WHERE datname = current_database()").fetchone()
        assert row is not None
        return int(row[0])


def has_walinspect(conn: psycopg.Connection[Any]) -> bool:
    """Whether pg_walinspect is (or could be made) available in this database."""
    try:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_walinspect")
    except psycopg.Error:
        return False
    return True
