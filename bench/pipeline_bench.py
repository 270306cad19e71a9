"""Pipeline benchmark: services and worker as separate processes (hybrid mode).

    python bench/pipeline_bench.py [--runs 100] [--burst 1000]

(a) linear-4 end to end, one after another; (b) diamond, same; (c) a burst of linear-4
tasks submitted at once: steps/s and task latency; (d) statements and commits per step;
(e) peak resident memory of each process during (c). Figures of peer systems measured on
this machine kind (../shared/PEERS.md) are printed alongside.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
import uuid
from pathlib import Path

import psutil
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (
    CompletionTracker,
    cluster,
    fresh_database,
    percentile,
    send_requests,
    summary_ms,
)
from tasker_cli.cluster import health
from tasker_worker.examples import templates_dir

PEERS = """Peers on this machine kind (PEERS.md): 200 linear-4 at once — Procrastinate ~550 steps/s,
DBOS ~300, Celery+Redis ~800 (no durable state); single linear-4 p50 — Procrastinate 17-20 ms,
DBOS 20-30 ms, Celery+Redis ~10 ms. Rust reference: linear-4 p50 255 ms, ~19 DB ops per step.
Targets: linear-4 p50 <= 30 ms, p99 <= 80 ms; >= 600 steps/s; <= 8 round trips per step;
<= 150 MB RSS per service process."""


def sequential(url: str, tracker: CompletionTracker, name: str, runs: int) -> list[float]:
    latencies: list[float] = []
    with psycopg.connect(url, autocommit=True) as conn:
        for i in range(runs + 5):
            t0 = time.perf_counter()
            (rid,) = send_requests(conn, name, [{"even_number": 2, "run": uuid.uuid4().hex}])
            if not tracker.wait([rid], 30):
                raise RuntimeError(f"{name} run {i} did not finish")
            if i >= 5:  # warm-up
                latencies.append(tracker.done_at[tracker.task_of[rid]] - t0)
    return latencies


def db_counters(c: object) -> tuple[int, int]:
    statements = commits = 0
    for proc in c.processes:  # type: ignore[attr-defined]
        detail = health(proc.health_port, "/health/detailed") or {}
        db = (detail.get("details") or {}).get("database") or {}
        statements += int(db.get("statements", 0))
        commits += int(db.get("commits", 0))
    return statements, commits


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--burst", type=int, default=1000)
    parser.add_argument("--async-commit", action="store_true",
                        help="synchronous_commit=off for worker, results and finalizer "
                             "(ingestion stays durable)")
    args = parser.parse_args()
    with fresh_database() as url:
        fast = {"TASKER_DATABASE__SYNCHRONOUS_COMMIT": "false"} if args.async_commit else {}
        c = cluster(url, namespace="examples", handlers="tasker_worker.examples.handlers",
                    templates=str(templates_dir()),
                    service_env={name: fast for name in ("worker", "results", "finalizer")})
        with c, CompletionTracker(url) as tracker:
            linear = sequential(url, tracker, "linear_workflow", args.runs)
            diamond = sequential(url, tracker, "diamond_workflow", args.runs)

            procs = {p.label: psutil.Process(p.pid) for p in c.processes if p.pid}
            peak = {label: 0 for label in procs}
            sampling = True

            def sample() -> None:
                while sampling:
                    for label, proc in procs.items():
                        try:
                            peak[label] = max(peak[label], proc.memory_info().rss)
                        except psutil.Error:
                            pass
                    time.sleep(0.05)

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            s0, c0 = db_counters(c)
            with psycopg.connect(url, autocommit=True) as conn:
                t0 = time.perf_counter()
                rids = send_requests(conn, "linear_workflow",
                                     [{"even_number": 2, "i": i} for i in range(args.burst)])
            if not tracker.wait(rids, 300):
                print("burst did not finish", file=sys.stderr)
                return 1
            t_end = max(tracker.done_at[tracker.task_of[r]] for r in rids)
            s1, c1 = db_counters(c)
            sampling = False
            sampler.join()
            lat = [tracker.done_at[tracker.task_of[r]] - t0 for r in rids]
    steps = 4 * args.burst
    print(f"\nTasker pipeline benchmark ({args.runs} sequential runs, burst of {args.burst}); one "
          "process per service, one worker with 100 concurrent handlers, hybrid mode, "
          + ("synchronous_commit=off for worker/results/finalizer" if args.async_commit
             else "flushed commits for task creation, result application and task outcomes "
                 "(claims and result records are worker handoffs: README, commit policy)"))
    print(f"(a) linear-4 sequential : {summary_ms(linear)}")
    print(f"(b) diamond sequential  : {summary_ms(diamond)}")
    print(f"(c) burst of {args.burst} linear-4: {steps / (t_end - t0):7.0f} steps/s, "
          f"wall {t_end - t0:5.2f} s, task latency p50 {percentile(lat, 50) * 1000:6.0f} ms "
          f"p99 {percentile(lat, 99) * 1000:6.0f} ms")
    print(f"(d) per step during (c): {(s1 - s0) / steps:4.1f} statements (at most as many round "
          "trips: pipelined ones share one), "
          f"{(c1 - c0) / steps:4.2f} commits")
    print("(e) peak RSS during (c): " + ", ".join(
        f"{label} {rss / 2**20:5.1f} MB" for label, rss in sorted(peak.items())))
    print("\n" + PEERS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
