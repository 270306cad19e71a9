"""Table upkeep whatever the server's autovacuum does: VACUUM/ANALYZE of the PGMQ queue
tables (often) and of Tasker's tables (less often) by their dead and changed rows, and
retention passes; one replica at a time (a session advisory lock)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal

import structlog
import trio
from psycopg import sql

from tasker_shared.db.database import Conn, Database, open_database
from tasker_shared.db.retention import PruneCounts, prune_batch, prune_cutoff
from tasker_shared.runtime.settings import MaintenanceSettings

log = structlog.get_logger("tasker.maintenance")

MAINTENANCE_LOCK_KEY = 7_245_111_018  # pg_advisory_lock key of the maintenance leader

Kind = Literal["queue", "state"]

_HOLD_OR_TAKE_LEAD = """
SELECT set_config('lock_timeout', %(lock)s, false),
       EXISTS (SELECT 1 FROM pg_locks
                WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND granted
                  AND classid = (%(key)s::bigint >> 32)::oid
                  AND objid = (%(key)s::bigint & 4294967295)::oid AND objsubid = 1)
       OR pg_try_advisory_lock(%(key)s::bigint) AS leader
"""
_RELEASE_LEAD = "SELECT pg_advisory_unlock(%s::bigint)"
_TABLE_STATS = r"""
SELECT schemaname AS schema, relname AS name,
       CASE WHEN schemaname = 'pgmq' THEN 'queue' ELSE 'state' END AS kind,
       n_live_tup AS live, n_dead_tup AS dead, n_mod_since_analyze AS modified,
       n_ins_since_vacuum AS inserted
  FROM pg_stat_user_tables
 WHERE (schemaname = 'pgmq' AND (relname LIKE 'q\_%%' OR relname LIKE 'a\_%%'))
    OR schemaname = 'tasker'
 ORDER BY schemaname, relname
"""


@dataclass(frozen=True, kw_only=True, slots=True)
class TableStats:
    """One table's counters from pg_stat_user_tables."""

    schema: str
    name: str
    kind: Kind
    live: int
    dead: int
    modified: int
    inserted: int

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"


@dataclass(frozen=True, kw_only=True, slots=True)
class Upkeep:
    """What a table needs now."""

    vacuum: bool
    analyze: bool

    @property
    def needed(self) -> bool:
        return self.vacuum or self.analyze


def upkeep_for(table: TableStats, settings: MaintenanceSettings) -> Upkeep:
    """Pure decision: VACUUM by dead rows (and, for state tables, rows inserted since the
    last vacuum), ANALYZE by rows changed since the last ANALYZE. Queue tables are only
    vacuumed: their plans never depend on statistics (0018) and VACUUM refreshes their
    size estimates anyway."""
    if table.kind == "queue":
        return Upkeep(vacuum=table.dead >= settings.queue_dead_rows, analyze=False)
    vacuum = (table.dead >= settings.state_dead_rows
              and table.dead >= settings.state_dead_fraction * table.live)
    vacuum = vacuum or (table.inserted >= settings.state_inserted_rows
                        and table.inserted >= 0.2 * table.live)
    analyze = (table.modified >= settings.analyze_changed_rows
               and table.modified >= settings.analyze_fraction * table.live)
    return Upkeep(vacuum=vacuum, analyze=analyze)


def hold_or_take_lead(conn: Conn, lock_timeout_ms: int) -> bool:
    """True when this session holds (or just took) the maintenance lock. Autocommit."""
    row = conn.execute(_HOLD_OR_TAKE_LEAD, {"lock": f"{int(lock_timeout_ms)}ms",
                                            "key": MAINTENANCE_LOCK_KEY}).fetchone()
    return bool(row and row["leader"])


def release_lead(conn: Conn) -> None:
    conn.execute(_RELEASE_LEAD, (MAINTENANCE_LOCK_KEY,))


def table_stats(conn: Conn) -> list[TableStats]:
    return [TableStats(schema=r["schema"], name=r["name"], kind=r["kind"],
                       live=int(r["live"] or 0), dead=int(r["dead"] or 0),
                       modified=int(r["modified"] or 0), inserted=int(r["inserted"] or 0))
            for r in conn.execute(_TABLE_STATS).fetchall()]


def tune_queue_tables(conn: Conn) -> int:
    """Per-table autovacuum settings on queue tables created since the last call."""
    row = conn.execute("SELECT tasker.tune_queue_tables_v1() AS n").fetchone()
    return int(row["n"]) if row else 0


def run_upkeep(conn: Conn, table: TableStats, upkeep: Upkeep) -> None:
    """VACUUM and/or ANALYZE one table; SKIP_LOCKED: a table someone holds a conflicting
    lock on is left for the next pass. The connection must be in autocommit mode."""
    target = sql.Identifier(table.schema, table.name)
    if upkeep.vacuum:
        options = sql.SQL("SKIP_LOCKED, ANALYZE") if upkeep.analyze else sql.SQL("SKIP_LOCKED")
        conn.execute(sql.SQL("VACUUM ({}) {}").format(options, target))
    elif upkeep.analyze:
        conn.execute(sql.SQL("ANALYZE (SKIP_LOCKED) {}").format(target))


@dataclass(kw_only=True, slots=True)
class MaintenanceStatistics:
    leader: bool = False
    passes: int = 0
    vacuums: int = 0
    analyzes: int = 0
    failures: int = 0
    last_error: str | None = None
    last_pass_at: float | None = None
    last_pass_seconds: float = 0.0
    prune_passes: int = 0
    pruned: PruneCounts = field(default_factory=PruneCounts)
    upkept: dict[str, int] = field(default_factory=dict)


class Maintainer:
    """Runs upkeep passes on a timer over a connection of its own (VACUUM needs
    autocommit and may run long); see the module docstring."""

    def __init__(self, *, url: str, settings: MaintenanceSettings) -> None:
        self.url = url
        self.settings = settings
        self.stats = MaintenanceStatistics()

    async def run(self) -> None:
        """Forever: every `queue_interval_seconds` a pass over the queue tables; state
        tables and retention when their intervals are due (all at once at start)."""
        if not self.settings.enabled:
            return
        async with open_database(
            self.url, min_size=1, max_size=1, application_name="tasker-maintenance",
            statement_timeout_ms=self.settings.statement_timeout_ms,
        ) as db:
            try:
                await self._loop(db)
            finally:
                with trio.CancelScope(shield=True):
                    if self.stats.leader:
                        try:
                            await db.run_autocommit(release_lead)
                        except Exception:  # closing the connection releases it too
                            pass

    async def _loop(self, db: Database) -> None:
        next_state = next_prune = trio.current_time()
        while True:
            now = trio.current_time()
            state, prune = now >= next_state, now >= next_prune
            if state:
                next_state = now + self.settings.state_interval_seconds
            if prune:
                next_prune = now + self.settings.prune_interval_seconds
            try:
                await self.run_once(db, state=state, prune=prune)
            except Exception as exc:  # a failed pass is retried next interval
                self._failed("pass", exc)
            await trio.sleep(self.settings.queue_interval_seconds)

    async def run_once(self, db: Database, *, state: bool = True,
                       prune: bool = True) -> list[tuple[TableStats, Upkeep]]:
        """One pass (if this replica leads): upkeep of the queue tables, and of the state
        tables and retention when asked. Returns the upkeep it ran."""
        lead = await db.run_autocommit(hold_or_take_lead, self.settings.lock_timeout_ms)
        if lead != self.stats.leader:
            log.info("maintenance_leader", action="lead" if lead else "standby")
        self.stats.leader = lead
        if not lead:
            return []
        started = time.monotonic()
        if state:
            await db.run_autocommit(tune_queue_tables)
        done: list[tuple[TableStats, Upkeep]] = []
        for table in await db.run_autocommit(table_stats):
            if table.kind == "state" and not state:
                continue
            upkeep = upkeep_for(table, self.settings)
            if upkeep.needed and await self._upkeep(db, table, upkeep):
                done.append((table, upkeep))
        if prune and self.settings.retention_days > 0:
            await self.prune(db)
        self.stats.passes += 1
        self.stats.last_pass_at = time.time()
        self.stats.last_pass_seconds = round(time.monotonic() - started, 3)
        return done

    async def _upkeep(self, db: Database, table: TableStats, upkeep: Upkeep) -> bool:
        t0 = time.monotonic()
        try:
            await db.run_autocommit(run_upkeep, table, upkeep)
        except Exception as exc:  # lock timeout, statement timeout...: next pass
            self._failed("upkeep", exc, table=table.qualified)
            return False
        self.stats.vacuums += upkeep.vacuum
        self.stats.analyzes += upkeep.analyze
        self.stats.upkept[table.qualified] = self.stats.upkept.get(table.qualified, 0) + 1
        log.info("table_upkeep", action="vacuum" if upkeep.vacuum else "analyze",
                 table=table.qualified, analyze=upkeep.analyze, dead_rows=table.dead,
                 live_rows=table.live, changed_rows=table.modified,
                 seconds=round(time.monotonic() - t0, 3))
        return True

    async def prune(self, db: Database) -> PruneCounts:
        """One retention pass: batches of `prune_batch_size` until nothing is left or
        `prune_max_batches` ran; a batch that meets a lock is left for the next pass."""
        s = self.settings
        cutoff = await db.run_autocommit(prune_cutoff, timedelta(days=s.retention_days))
        total = PruneCounts()
        for _ in range(s.prune_max_batches):
            try:
                counts = await db.run(prune_batch, cutoff, s.prune_batch_size,
                                      lock_timeout_ms=s.lock_timeout_ms)
            except Exception as exc:
                self._failed("prune", exc)
                break
            total.add(counts)
            if not counts.more_after(s.prune_batch_size):
                break
            await trio.sleep(s.prune_pause_seconds)
        self.stats.prune_passes += 1
        self.stats.pruned.add(total)
        if total.tasks or total.outcomes or total.archived or total.poison:
            log.info("history_pruned", action="prune", cutoff=cutoff.isoformat(),
                     **total.as_dict())
        return total

    def _failed(self, what: str, exc: Exception, **fields: Any) -> None:
        self.stats.failures += 1
        self.stats.last_error = f"{what}: {exc}"
        log.warning("maintenance_failed", action=what, error=str(exc), **fields)

    def statistics(self) -> dict[str, Any]:
        s = self.stats
        return {"enabled": self.settings.enabled, "leader": s.leader, "passes": s.passes,
                "vacuums": s.vacuums, "analyzes": s.analyzes, "failures": s.failures,
                "last_error": s.last_error, "last_pass_at": s.last_pass_at,
                "last_pass_seconds": s.last_pass_seconds,
                "retention_days": self.settings.retention_days,
                "prune_passes": s.prune_passes, "pruned": s.pruned.as_dict(),
                "tables": dict(s.upkept)}
