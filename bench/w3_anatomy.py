"""W3 latency anatomy: linear-4 tasks one after another, through the client or the queue.

    python bench/w3_anatomy.py [--runs 30] [--rounds 3] [--via client,queue] [--burst 0]

Each run submits one linear-4 task (the client's gRPC create, or one `send_v1` straight into
the ingestion queue) and waits for it to finish; its latency runs from the submit call to
the task's completion as the database recorded it (`tasks.completed_at`). The anatomy splits
that time into hops from the database's own timestamps (the ingestion transaction's start,
then when each step transition was written, its metadata's clock_timestamp): submit ->
task created (ingestion) -> step 1 enqueued -> claimed -> result recorded -> applied -> step
2 enqueued -> ... -> finalized. A hop inside one transaction is the work between the two
writes ("same tx" marks a step claimed by the transaction that enqueued it); one across
transactions also holds a commit, a wake-up and the next transaction's start. `--burst N`
also sends N tasks at once straight into the queue (W1's shape) and prints steps/s.
Prints the load average before and after, since the machine is shared.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import cluster, fresh_database, percentile
from tasker_worker.examples import templates_dir

_SEND = ("SELECT set_config('synchronous_commit', 'off', true),"
         " tasker.send_v1('orchestration_task_requests', %s)")

# For one task: when it was created, each step's transitions, and when it finished.
_TIMES = """
SELECT extract(epoch FROM t.created_at)::float8 AS created,
       extract(epoch FROM t.completed_at)::float8 AS completed,
       (SELECT array_agg(extract(epoch FROM tt.created_at)::float8 ORDER BY tt.sort_key)
          FROM tasker.task_transitions tt WHERE tt.task_uuid = t.task_uuid) AS task_times,
       (SELECT array_agg(ns.name || ':' || st.to_state || ':'
                         || extract(epoch FROM st.created_at)::float8 || ':'
                         || extract(epoch FROM (st.metadata ->> 'timestamp')::timestamptz)
                         ORDER BY st.created_at, st.sort_key)
          FROM tasker.workflow_steps ws
          JOIN tasker.named_steps ns ON ns.named_step_uuid = ws.named_step_uuid
          JOIN tasker.workflow_step_transitions st
            ON st.workflow_step_uuid = ws.workflow_step_uuid
         WHERE ws.task_uuid = t.task_uuid) AS step_times
  FROM tasker.tasks t WHERE t.task_uuid = %s"""

_DONE = """SELECT o.task_uuid, t.completed_at IS NOT NULL AS done
             FROM tasker.task_request_outcomes o
             LEFT JOIN tasker.tasks t ON t.task_uuid = o.task_uuid
            WHERE o.request_id = %s"""


def wait_done(conn: psycopg.Connection[Any], listen: psycopg.Connection[Any], rid: str,
              timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = conn.execute(_DONE, (rid,)).fetchone()
        if row is not None and row[1]:
            return str(row[0])
        for _ in listen.notifies(timeout=0.05, stop_after=1):
            pass
    raise RuntimeError(f"request {rid} did not finish within {timeout}s")


def hops(conn: psycopg.Connection[Any], task: str, t0: float) -> dict[str, float]:
    """Milliseconds per hop of one finished task (see the module docstring). A hop between
    two writes of the same transaction is only the work between them; one that crosses
    transactions also holds a commit, a wake-up and the next transaction's start."""
    row = conn.execute(_TIMES, (task,)).fetchone()
    assert row is not None
    created, completed, _task_times, step_times = row
    start: dict[str, dict[str, float]] = {}  # step -> state -> its transaction's start
    wrote: dict[str, dict[str, float]] = {}  # step -> state -> when the row was written
    for item in step_times:
        name, state, at, ts = item.split(":")
        start.setdefault(name, {}).setdefault(state, float(at))
        wrote.setdefault(name, {}).setdefault(state, float(ts))
    order = sorted(start, key=lambda n: start[n]["enqueued"])
    out = {"submit -> ingestion tx start": created - t0,
           "ingestion tx -> step 1 enqueued": wrote[order[0]]["enqueued"] - created}
    for i, name in enumerate(order, 1):
        w = wrote[name]
        same = start[name]["in_progress"] <= w["enqueued"]  # claimed by the enqueuing tx
        out[f"{i} enqueued -> claimed" + (" (same tx)" if same else "")] = (
            w["in_progress"] - w["enqueued"])
        out[f"{i} claimed -> result recorded"] = w["enqueued_for_orchestration"] - w["in_progress"]
        out[f"{i} recorded -> applied"] = w["complete"] - w["enqueued_for_orchestration"]
        if i < len(order):
            out[f"{i} applied -> {i + 1} enqueued"] = wrote[order[i]]["enqueued"] - w["complete"]
    # completed_at is the finishing transaction's start: 0 when it applied the last result
    out["last applied -> task finalized"] = max(0.0, completed - wrote[order[-1]]["complete"])
    out["total (submit -> finalized)"] = completed - t0
    return {k: v * 1000 for k, v in out.items()}


def run_round(url: str, via: str, runs: int, client: Any) -> tuple[list[float], list[dict[str, float]]]:
    latencies: list[float] = []
    anatomies: list[dict[str, float]] = []
    with psycopg.connect(url, autocommit=True) as conn, \
            psycopg.connect(url, autocommit=True) as listen:
        listen.execute("LISTEN tasker_task_events")
        for i in range(runs + 3):
            ctx = {"even_number": 2, "run": uuid.uuid4().hex}
            t0 = time.time()
            if via == "client":
                created = client.create_task("linear_workflow", namespace="examples",
                                             version="1.0.0", context=ctx)
                rid = created.request_id
            else:
                rid = str(uuid.uuid4())
                conn.execute(_SEND, (Jsonb({"request_id": rid, "task_request": {
                    "name": "linear_workflow", "namespace": "examples", "version": "1.0.0",
                    "context": ctx}}),))
            task = wait_done(conn, listen, rid)
            if i < 3:  # warm-up
                continue
            h = hops(conn, task, t0)
            latencies.append(h["total (submit -> finalized)"])
            anatomies.append(h)
    return latencies, anatomies


def burst(url: str, n: int) -> float:
    """N linear-4 tasks sent at once straight into the queue: steps per second."""
    with psycopg.connect(url, autocommit=True) as conn:
        rids = [str(uuid.uuid4()) for _ in range(n)]
        t0 = time.time()
        with conn.transaction(), conn.cursor() as cur:
            cur.executemany("SELECT tasker.send_v1('orchestration_task_requests', %s)", [
                (Jsonb({"request_id": r, "task_request": {
                    "name": "linear_workflow", "namespace": "examples", "version": "1.0.0",
                    "context": {"even_number": 2, "i": i, "run": r}}}),) for i, r in enumerate(rids)])
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            row = conn.execute(
                "SELECT count(*) FILTER (WHERE t.completed_at IS NULL),"
                " extract(epoch FROM max(t.completed_at))::float8"
                " FROM tasker.task_request_outcomes o JOIN tasker.tasks t USING (task_uuid)"
                " WHERE o.request_id = ANY (%s)", (rids,)).fetchone()
            assert row is not None
            got = conn.execute("SELECT count(*) FROM tasker.task_request_outcomes"
                               " WHERE request_id = ANY (%s)", (rids,)).fetchone()
            if got is not None and got[0] == n and row[0] == 0:
                return 4 * n / (row[1] - t0)
            time.sleep(0.2)
    raise RuntimeError("burst did not finish")


def print_functions(url: str) -> None:
    """Calls and mean time per call (total, and own) of the busiest SQL functions."""
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT funcname, calls, total_time / calls, self_time / calls"
            " FROM pg_stat_user_functions WHERE schemaname = 'tasker'"
            " ORDER BY total_time DESC LIMIT 25").fetchall()
    print("\nSQL functions (all runs): calls, ms per call (total, own)")
    for name, calls, total, own in rows:
        print(f"  {name:42s} {calls:7d} {total:7.3f} {own:7.3f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--via", default="client,queue")
    parser.add_argument("--burst", type=int, default=0)
    parser.add_argument("--functions", action="store_true",
                        help="track_functions=pl: print time per call of the SQL functions")
    parser.add_argument("--log-dir", type=Path, default=None)
    args = parser.parse_args()
    vias = [v for v in args.via.split(",") if v]
    print(f"load average before: {os.getloadavg()}")
    with fresh_database() as url:
        if args.functions:
            with psycopg.connect(url, autocommit=True) as conn:
                dbname = conn.info.dbname
                conn.execute(f'ALTER DATABASE "{dbname}" SET track_functions = \'pl\'')
        c = cluster(url, namespace="examples", handlers="tasker_worker.examples.handlers",
                    templates=str(templates_dir()), replicas={"gateway": 1},
                    log_dir=args.log_dir)
        with c:
            from tasker_client import SyncTaskerClient
            port = c.get("gateway").env["TASKER_GATEWAY__GRPC_PORT"]
            with SyncTaskerClient(f"127.0.0.1:{port}") as client:
                for r in range(args.rounds):
                    for via in vias:
                        lat, anat = run_round(url, via, args.runs, client)
                        print(f"\nround {r + 1} via {via}: p50 {percentile(lat, 50):.1f}  "
                              f"p95 {percentile(lat, 95):.1f}  p99 {percentile(lat, 99):.1f}  "
                              f"max {max(lat):.1f} ms   load {os.getloadavg()[0]:.2f}")
                        for key in dict.fromkeys(k for a in anat for k in a):
                            vals = [a[key] for a in anat if key in a]
                            print(f"  {key:36s} p50 {percentile(vals, 50):6.1f}"
                                  f"  p90 {percentile(vals, 90):6.1f} ms  (n={len(vals)})")
                for _ in range(args.rounds if args.burst else 0):
                    print(f"\nburst of {args.burst} straight into the queue: "
                          f"{burst(url, args.burst):.0f} steps/s   load {os.getloadavg()[0]:.2f}")
        if args.functions:
            print_functions(url)
    print(f"\nload average after: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
