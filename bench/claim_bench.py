"""Worker claim benchmark: claim_steps_v1 (fresh steps, duplicates, idle polls) and the
visibility/lease heartbeat, timed from the client with the round trip included.

    python bench/claim_bench.py [--tasks 5000] [--calls 300]

Creates a fresh database (server of TASKER_DATABASE_URL / DATABASE_URL, else an embedded
PostgreSQL), loads N two-step tasks whose first step is enqueued (one message each), then
times, through the worker's own call sites (tasker_worker.runtime.claims):
- `claim 1`: a claim of one fresh message (enqueued -> in_progress, hydration included);
- `claim 10`: a claim of ten fresh messages;
- `claim idle`: a poll that finds no visible message;
- `duplicate`: a claim of a second message for a step whose claim is still live;
- `heartbeat 50`: one extension of 50 in-flight claims.
and the WAL a fresh claim and a heartbeat write (EXPLAIN (ANALYZE, WAL): this session only).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import uuid
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import fresh_database  # noqa: E402
from bench.sql_bench import percentile, timed  # noqa: E402
from tasker_worker.runtime.claims import claim_steps, extend_visibility  # noqa: E402

QUEUE = "worker_claimbench_queue"
VT = 30.0


def load(conn: psycopg.Connection[Any], n: int) -> None:
    row = conn.execute("SELECT tasker.register_template_v1('claimbench', 'two', '1', NULL,"
                       " '{}'::jsonb) AS u").fetchone()
    assert row is not None
    steps = Jsonb([{"name": "cb_first"}, {"name": "cb_second"}])
    edges = Jsonb([{"from": "cb_first", "to": "cb_second"}])
    for _ in range(n):
        task = conn.execute(
            "SELECT tasker.create_task_v1(%s, %s, %s, %s) AS t",
            (row["u"], Jsonb({"identity_hash": uuid.uuid4().hex,
                              "correlation_id": str(uuid.uuid4())}), steps, edges),
        ).fetchone()
        assert task is not None
        conn.execute("SELECT tasker.evaluate_task_v1(%s)", (task["t"],))
    conn.execute("ANALYZE")


CLAIM_SQL = ("SELECT c.* FROM tasker.claim_steps_v1(%s::text, NULL::bigint[], %s::int,"
             " %s::numeric, 'bench'::text, 5) AS c")
HEARTBEAT_SQL = "SELECT tasker.extend_step_claims_v1(%s::text, %s::bigint[], %s::numeric)"
OLD_HEARTBEAT_SQL = "SELECT tasker.extend_visibility_v1(%s::text, %s::bigint[], %s::numeric)"


def wal_bytes(conn: psycopg.Connection[Any], sql: str, params: tuple[Any, ...]) -> int:
    """WAL this statement wrote (its nested statements included), from EXPLAIN (ANALYZE,
    WAL): this session's own, whatever else the server is doing."""
    row = conn.execute("EXPLAIN (ANALYZE, WAL, FORMAT JSON) " + sql, params).fetchone()
    assert row is not None
    return int(next(iter(row.values()))[0]["Plan"].get("WAL Bytes", 0))


def measure(conn: psycopg.Connection[Any], calls: int) -> tuple[dict[str, list[float]],
                                                                 dict[str, float]]:
    """Timings (ms) of each kind of call, and WAL bytes per call of some (20 more calls)."""
    def claim(limit: int) -> list[Any]:
        return claim_steps(conn, QUEUE, None, limit, visibility_seconds=VT,
                           worker_id="bench", max_reads=5)

    def mean_wal(sql: str, params: tuple[Any, ...]) -> float:
        return statistics.mean(wal_bytes(conn, sql, params) for _ in range(20))

    wal = {"claim 1": mean_wal(CLAIM_SQL, (QUEUE, 1, VT))}
    results = {"claim 1": timed(lambda: claim(1), calls),
               "claim 10": timed(lambda: claim(10), calls // 10, warmup=2)}
    held = claim(50)
    by_queue = {QUEUE: [s.msg_id for s in held]}
    results["heartbeat 50"] = timed(lambda: extend_visibility(conn, by_queue, VT), calls)
    exists = conn.execute("SELECT to_regprocedure('tasker.extend_step_claims_v1(text, bigint[],"
                          " numeric)') IS NOT NULL AS e").fetchone()
    wal["heartbeat 50"] = mean_wal(HEARTBEAT_SQL if exists and exists["e"] else OLD_HEARTBEAT_SQL,
                                   (QUEUE, by_queue[QUEUE], VT))
    duplicates = iter(held * (calls // len(held) + 2))

    def duplicate() -> None:
        step = next(duplicates)
        msg = conn.execute(
            "SELECT tasker.send_v1(%s, %s) AS id",
            (QUEUE, Jsonb({"task_uuid": str(step.task_uuid), "step_uuid": str(step.step_uuid),
                           "correlation_id": str(step.correlation_id)})),
        ).fetchone()
        assert msg is not None
        claim_steps(conn, QUEUE, [msg["id"]], 1, visibility_seconds=VT, worker_id="bench",
                    max_reads=5)

    results["duplicate (send + claim)"] = timed(duplicate, calls)
    conn.execute(f"DELETE FROM pgmq.q_{QUEUE.lower()} WHERE vt <= clock_timestamp()")
    results["claim idle"] = timed(lambda: claim(10), calls)
    return results, wal


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=5000)
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args(argv)
    if args.tasks < 2 * args.calls + 200:
        parser.error("--tasks must be at least 2 * --calls + 200 (each claim needs a message)")
    with fresh_database() as url, psycopg.connect(url, autocommit=True,
                                                  row_factory=dict_row) as conn:
        load(conn, args.tasks)
        results, wal = measure(conn, args.calls)
        row = conn.execute("SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables"
                           " WHERE relid = 'tasker.workflow_steps'::regclass").fetchone()
    print(f"\n{args.tasks:,} two-step tasks; {'call':<28}{'median ms':>10}{'p99 ms':>10}"
          f"{'WAL B/call':>12}")
    for key, samples in results.items():
        print(f"{'':>20}{key:<28}{statistics.median(samples):>10.3f}"
              f"{percentile(samples, 99):>10.3f}" + (f"{wal[key]:>12.0f}" if key in wal else ""))
    if row:
        print(f"workflow_steps updates: {row['n_tup_upd']:,}, HOT {row['n_tup_hot_upd']:,}"
              " (statistics may lag by up to a second)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
