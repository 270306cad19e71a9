"""History benchmark: does the cost of a task grow with the finished tasks in the database?

    python bench/history_bench.py [--history 100000] [--rounds 2] [--analyze-empty]

Runs W1 (200 linear-4 tasks submitted at once: steps/s) and W3 (30 linear-4 tasks one after
another: p50/p95 from the submit to the completion event) on an empty database, then builds
a history of `--history` finished linear-4 tasks with bulk SQL, shaped like what a real
completed linear-4 task leaves behind (1 task, 4 steps with results, 3 edges, 6 task and 20
step transitions, 4 audit rows through the audit trigger, 1 request outcome), restarts the
services, waits for the finalizer's maintenance pass over the new rows, and runs W1 and W3
again. Issue 18's target: with 1,000,000 finished tasks, both within 10% of the empty
database, whatever the server's autovacuum setting. Uses its own database (dropped after).
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (
    Completions,
    cluster,
    fresh_database,
    percentile,
    print_table,
    send_requests,
    server_version,
)
from tasker_cli.cluster import Cluster, health
from tasker_worker.examples import templates_dir

# uuidv7 whose time is `ts` (as tasker.uuid_generate_v7 makes them, at an old time).
_UUID7_AT = """
CREATE FUNCTION pg_temp.uuid7_at(ts timestamptz) RETURNS uuid LANGUAGE sql VOLATILE AS $$
    SELECT encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid())
        PLACING substring(int8send((extract(epoch FROM ts) * 1000)::bigint) FROM 3)
        FROM 1 FOR 6), 52, 1), 53, 1), 'hex')::uuid
$$"""
# One chunk of finished tasks: ordinals %(first)s .. %(last)s of %(total)s, finished
# between 20 days and 1 day ago (younger than the default retention of 30 days).
_CHUNK = [
    """CREATE TEMP TABLE h ON COMMIT DROP AS
       SELECT n, t0, pg_temp.uuid7_at(t0) AS task, gen_random_uuid() AS corr
         FROM (SELECT n, now() - interval '20 days'
                         + (n::float8 / %(total)s::int) * interval '19 days' AS t0
                 FROM generate_series(%(first)s::int, %(last)s::int) n) x""",
    """CREATE TEMP TABLE hs ON COMMIT DROP AS
       SELECT h.n, h.task, h.corr, k, s.named_step_uuid, s.name,
              h.t0 + k * interval '35 ms' AS at, pg_temp.uuid7_at(h.t0) AS step
         FROM h CROSS JOIN generate_series(1, 4) k
         JOIN tasker.named_steps s ON s.name = 'linear_step_' || k""",
    """INSERT INTO tasker.tasks (task_uuid, named_task_uuid, complete, requested_at,
           completed_at, initiator, source_system, reason, tags, context, identity_hash,
           priority, correlation_id, created_at, updated_at)
       SELECT task, %(nt)s, true, t0, t0 + interval '160 ms', 'system', 'tasker-core',
              'Task requested', '[]', jsonb_build_object('even_number', 2, 'i', n),
              encode(sha256(convert_to(task::text, 'UTF8')), 'hex'), 0, corr, t0,
              t0 + interval '160 ms'
         FROM h ORDER BY n""",
    """INSERT INTO tasker.workflow_steps (workflow_step_uuid, task_uuid, named_step_uuid,
           retryable, max_attempts, in_process, processed, processed_at, attempts,
           last_attempted_at, inputs, results, priority, created_at, updated_at, current_state)
       SELECT step, task, named_step_uuid, true, 3, false, true, at + interval '5 ms', 1, at,
              CASE WHEN k = 1 THEN '{}'::jsonb
                   ELSE jsonb_build_object('parent', 'linear_step_' || (k - 1)) END,
              jsonb_build_object(
                  'result', jsonb_build_object('step', name, 'value', 2 ^ (2 ^ k)),
                  'status', 'completed', 'success', true, 'step_uuid', step::text,
                  'metadata', jsonb_build_object(
                      'custom', '{}'::jsonb, 'context', '{}'::jsonb, 'retryable', false,
                      'worker_id', 'bench-history', 'started_at', at,
                      'completed_at', at + interval '1 ms', 'execution_time_ms', 0)),
              0, at - k * interval '35 ms', at + interval '5 ms', 'complete'
         FROM hs ORDER BY n, k""",
    """INSERT INTO tasker.workflow_step_edges (from_step_uuid, to_step_uuid, name, created_at)
       SELECT p.step, c.step, 'provides', p.at
         FROM hs c JOIN hs p ON p.n = c.n AND p.k = c.k - 1 ORDER BY c.n, c.k""",
    """INSERT INTO tasker.task_transitions (task_uuid, from_state, to_state, metadata,
           sort_key, most_recent, processor_uuid, created_at, updated_at)
       SELECT h.task, tr.from_state, tr.to_state,
              jsonb_build_object('event', tr.event, 'timestamp', h.t0 + tr.after)
                  || CASE WHEN tr.sort_key BETWEEN 2 AND 4 THEN '{"enqueued": 1}'::jsonb
                          ELSE '{}'::jsonb END,
              tr.sort_key, tr.sort_key = 6, %(processor)s, h.t0 + tr.after, h.t0 + tr.after
         FROM h CROSS JOIN (VALUES
             (1, NULL, 'pending', 'create', interval '0 ms'),
             (2, 'pending', 'initializing', 'start', interval '20 ms'),
             (3, 'initializing', 'enqueuing_steps', 'ready_steps_found', interval '21 ms'),
             (4, 'enqueuing_steps', 'steps_in_process', 'steps_enqueued', interval '22 ms'),
             (5, 'steps_in_process', 'evaluating_results', 'all_steps_completed',
              interval '170 ms'),
             (6, 'evaluating_results', 'complete', 'all_steps_successful', interval '171 ms'))
           AS tr(sort_key, from_state, to_state, event, after)
        ORDER BY h.n, tr.sort_key""",
    # The audit trigger writes one audit row per enqueued_for_orchestration transition.
    """INSERT INTO tasker.workflow_step_transitions (workflow_step_uuid, from_state, to_state,
           metadata, sort_key, created_at, updated_at)
       SELECT hs.step, tr.from_state, tr.to_state,
              jsonb_build_object('event', tr.event, 'timestamp', hs.at + tr.after) || CASE
                  WHEN tr.sort_key = 3 THEN jsonb_build_object('msg_id', hs.n * 4 + hs.k,
                                                               'worker_id', 'bench-history')
                  WHEN tr.sort_key = 4 THEN jsonb_build_object(
                      'attempt', 1, 'worker_id', 'bench-history', 'correlation_id', hs.corr)
                  WHEN tr.sort_key = 5 THEN '{"reason": null, "backoff_kind": null}'::jsonb
                  ELSE '{}'::jsonb END,
              tr.sort_key, hs.at + tr.after, hs.at + tr.after
         FROM hs CROSS JOIN (VALUES
             (1, NULL, 'pending', 'create', interval '-30 ms'),
             (2, 'pending', 'enqueued', 'enqueue', interval '-10 ms'),
             (3, 'enqueued', 'in_progress', 'start', interval '0 ms'),
             (4, 'in_progress', 'enqueued_for_orchestration', 'enqueue_for_orchestration',
              interval '3 ms'),
             (5, 'enqueued_for_orchestration', 'complete', 'complete', interval '12 ms'))
           AS tr(sort_key, from_state, to_state, event, after)
        ORDER BY hs.n, hs.k, tr.sort_key""",
    """INSERT INTO tasker.task_request_outcomes (request_id, outcome, task_uuid, recorded_at)
       SELECT gen_random_uuid()::text, 'created', task, t0 FROM h ORDER BY n""",
]


def build_history(url: str, total: int, chunk: int) -> float:
    """Insert `total` finished linear-4 tasks; returns the seconds it took."""
    t0 = time.time()
    with psycopg.connect(url) as conn:
        conn.execute("SET synchronous_commit = off")
        conn.execute(_UUID7_AT)
        row = conn.execute("SELECT named_task_uuid FROM tasker.named_tasks"
                           " WHERE name = 'linear_workflow'").fetchone()
        if row is None:
            raise RuntimeError("linear_workflow is not registered")
        params: dict[str, Any] = {"nt": row[0], "total": total, "processor": uuid.uuid4()}
        conn.commit()
        for first in range(1, total + 1, chunk):
            params.update(first=first, last=min(total, first + chunk - 1))
            for statement in _CHUNK:
                conn.execute(statement, params)
            conn.commit()
            done = params["last"]
            rate = done / (time.time() - t0)
            print(f"  history: {done:,}/{total:,} tasks ({rate:,.0f} tasks/s)", flush=True)
    return time.time() - t0


def w1(url: str, tracker: Completions, tasks: int) -> float:
    """Steps per second of `tasks` linear-4 tasks submitted in one transaction."""
    with psycopg.connect(url, autocommit=True) as conn:
        t0 = time.time()
        rids = send_requests(conn, "linear_workflow",
                             [{"even_number": 2, "w1": uuid.uuid4().hex} for _ in range(tasks)])
    if not tracker.wait(rids, 600):
        raise RuntimeError("W1 did not finish")
    return 4 * tasks / (max(tracker.done_at[tracker.task_of[r]] for r in rids) - t0)


def w3(url: str, tracker: Completions, runs: int) -> list[float]:
    """Latency (s) of `runs` linear-4 tasks one after another, after 5 warm-up runs."""
    latencies = []
    with psycopg.connect(url, autocommit=True) as conn:
        for i in range(runs + 5):
            t0 = time.time()
            (rid,) = send_requests(conn, "linear_workflow",
                                   [{"even_number": 2, "w3": uuid.uuid4().hex}])
            if not tracker.wait([rid], 60):
                raise RuntimeError(f"W3 run {i} did not finish")
            if i >= 5:
                latencies.append(tracker.done_at[tracker.task_of[rid]] - t0)
    return latencies


def maintenance_stats(c: Cluster) -> dict[str, Any]:
    detail = health(c.get("finalizer").health_port, "/health/detailed") or {}
    stats: dict[str, Any] = (detail.get("details") or {}).get("maintenance") or {}
    return stats


def measure(url: str, args: argparse.Namespace, *, wait_maintenance: bool) -> dict[str, Any]:
    c = cluster(url, namespace="examples", handlers="tasker_worker.examples.handlers",
                templates=str(templates_dir()))
    with c, Completions(url) as tracker:
        if wait_maintenance:  # the first pass VACUUMs/ANALYZEs what the bulk load left
            t0 = time.time()
            while not maintenance_stats(c).get("passes"):
                if time.time() - t0 > 3600:
                    raise RuntimeError("no maintenance pass within an hour")
                time.sleep(1.0)
            stats = maintenance_stats(c)
            print(f"  maintenance pass after {time.time() - t0:.0f} s: "
                  f"{stats.get('vacuums')} vacuums, {stats.get('analyzes')} analyzes "
                  f"({', '.join(sorted(stats.get('tables', {})))})", flush=True)
        w3(url, tracker, 0)  # warm-up
        rates = [w1(url, tracker, args.w1) for _ in range(args.rounds)]
        lat = [x for _ in range(args.rounds) for x in w3(url, tracker, args.w3)]
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT pg_database_size(current_database()),"
                           " (SELECT count(*) FROM tasker.tasks)").fetchone()
    assert row is not None
    return {"w1": sorted(rates)[len(rates) // 2], "w1_all": rates,
            "p50": percentile(lat, 50) * 1000, "p95": percentile(lat, 95) * 1000,
            "size": row[0], "tasks": row[1]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--history", type=int, default=100_000,
                        help="finished tasks to build (issue 18's target is 1,000,000)")
    parser.add_argument("--chunk", type=int, default=20_000, help="tasks per bulk transaction")
    parser.add_argument("--w1", type=int, default=200, help="W1: tasks submitted at once")
    parser.add_argument("--w3", type=int, default=30, help="W3: tasks one after another")
    parser.add_argument("--rounds", type=int, default=2, help="W1 and W3 runs per phase")
    parser.add_argument("--analyze-empty", action="store_true",
                        help="ANALYZE the near-empty tables before the empty phase "
                             "(plans made on tiny statistics)")
    args = parser.parse_args()
    with fresh_database() as url:
        server = server_version(url)
        if args.analyze_empty:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("ANALYZE")
        print("empty database:", flush=True)
        empty = measure(url, args, wait_maintenance=False)
        print(f"building {args.history:,} finished tasks:", flush=True)
        seconds = build_history(url, args.history, args.chunk)
        print(f"with history ({seconds:.0f} s to build):", flush=True)
        full = measure(url, args, wait_maintenance=True)
    print(f"\nTasker history benchmark on PostgreSQL {server} (autovacuum as the server has "
          "it; the finalizer's maintenance loop vacuums and analyzes); one process per "
          f"service, {args.rounds} rounds per phase (W1: median of rounds)")
    rows = [
        (f"W1 {args.w1} linear-4 at once, steps/s", f"{empty['w1']:.0f}",
         f"{full['w1']:.0f}", f"{full['w1'] / empty['w1']:.2f}"),
        (f"W3 {args.w3} linear-4 in turn, p50 ms", f"{empty['p50']:.1f}",
         f"{full['p50']:.1f}", f"{full['p50'] / empty['p50']:.2f}"),
        (f"W3 {args.w3} linear-4 in turn, p95 ms", f"{empty['p95']:.1f}",
         f"{full['p95']:.1f}", f"{full['p95'] / empty['p95']:.2f}"),
        ("tasks in the database", f"{empty['tasks']:,}", f"{full['tasks']:,}", ""),
        ("database size", f"{empty['size'] / 2**20:,.0f} MB", f"{full['size'] / 2**20:,.0f} MB",
         ""),
    ]
    print_table(("measure", "empty", f"{args.history:,} finished tasks", "ratio"), rows)
    print(f"W1 rounds: empty {[round(x) for x in empty['w1_all']]}, "
          f"history {[round(x) for x in full['w1_all']]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
