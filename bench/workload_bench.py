"""Workload benchmark: what users see. The four workloads of shared/PEERS.md, submitted through
the public Python client (gRPC create; also one batch create, bounded concurrent creates or
creates one after another: see --modes) and, as a second column, straight into the ingestion
queue; every service a separate process.

    python bench/workload_bench.py [--tasks 200] [--sequential 30] [--fanouts 5] [--width 100]
                                   [--modes client,queue] [--rounds 1] [--anatomy 20]
                                   [--peers procrastinate,celery]

W1: `--tasks` linear-4 submitted at once; W2: as many diamonds at once; W3: `--sequential`
linear-4 one after another (after `--warmup` runs); W4: `--fanouts` tasks of one step ->
`--width` parallel steps -> a join. Latency runs from the submit call to the task's completion
as the database recorded it (created_at of its transition to `complete`); steps/s is all steps
over the time from the first submit to the last completion. Costs per step are measured over
each workload (bench/meter.py says how). Then a latency anatomy of an idle linear-4 task per
way of submitting (bench/anatomy.py). Workloads run round-robin across the ways of submitting.

--peers runs the same workloads on peer systems (bench/peers/: Procrastinate, Celery + Redis),
each with its own worker process, in the same round-robin (after the Tasker modes of each
workload); their packages (the `peers` extra) are pip-installed when missing.

Database: TASKER_DATABASE_URL's server, else the embedded one; a database of its own is created
and dropped afterwards.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import anatomy, peers
from bench.common import Completions, cluster, fresh_database, server_version
from bench.meter import STATS_SETTLE_SECONDS, Meter, has_walinspect
from bench.report import (
    Anatomy,
    Outcome,
    anatomy_table,
    peers_table,
    wal_relations_table,
    workload_table,
)
from bench.workloads import (
    ClientSubmitter,
    QueueSubmitter,
    Workload,
    contexts,
    workloads,
    write_templates,
)
from tasker_cli.cluster import Cluster
from tasker_worker.examples import templates_dir

MODES = ("client", "client-nowait", "client-batch", "client-bounded", "client-sequential",
         "queue")
Submitter = ClientSubmitter | QueueSubmitter


def submitter(mode: str, c: Cluster, url: str) -> Submitter:
    if mode == "queue":
        return QueueSubmitter(url)
    address = f"127.0.0.1:{c.get('gateway').env['TASKER_GATEWAY__GRPC_PORT']}"
    style = mode.removeprefix("client").removeprefix("-") or "gather"
    if style == "nowait":
        return ClientSubmitter(address, wait=False)
    return ClientSubmitter(address, style=style)


def run_workload(wl: Workload, sub: Submitter, c: Cluster, url: str, done: Completions,
                 *, timeout: float, settle: float) -> Outcome:
    pids = [p.pid for p in c.processes if p.pid]
    submitted: dict[str, float] = {}
    with Meter(url, pids, settle=settle) as meter:
        if wl.at_once:
            submitted = sub.submit(wl.template, contexts(wl.tasks))
            finished = done.wait(list(submitted), timeout)
        else:
            for ctx in contexts(wl.tasks):
                one = sub.submit(wl.template, [ctx])
                submitted.update(one)
                if not (finished := done.wait(list(one), timeout)):
                    break
        meter.stop()
    if not finished:
        raise RuntimeError(f"{wl.title} via {sub.label}: not finished within {timeout:.0f} s")
    states = {done.final_state[done.task_of[r]] for r in submitted}
    if states != {"complete"}:
        raise RuntimeError(f"{wl.title} via {sub.label}: tasks ended {sorted(states)}")
    assert meter.cost is not None
    ends = [done.done_at[done.task_of[r]] for r in submitted]
    return Outcome(workload=wl.key, title=wl.title, mode=sub.label,
                   steps=wl.steps_per_task * wl.tasks, wall=max(ends) - min(submitted.values()),
                   latencies=done.latencies(submitted), cost=meter.cost)


def warm_up(sub: Submitter, done: Completions, runs: int) -> None:
    for ctx in contexts(runs):
        if not done.wait(list(sub.submit("linear_workflow", [ctx])), 60):
            raise RuntimeError(f"warm-up via {sub.label} did not finish")


def idle_anatomy(sub: Submitter, url: str, done: Completions, runs: int) -> Anatomy:
    """`runs` linear-4 tasks one after another on an idle system: their hops, where the
    NOTIFYs were heard, via the client how long after ingestion's last write each create
    call returned (ms), and a durable / asynchronous commit probe after each task."""
    samples = []
    replies: list[float] = []
    probes: list[tuple[float, float]] = []
    with psycopg.connect(url, autocommit=True) as conn, \
            anatomy.NotificationClock(url, anatomy.queue_channels(conn)) as clock:
        for ctx in contexts(runs):
            time.sleep(0.1)  # idle: every service back to waiting
            ((rid, t0),) = sub.submit("linear_workflow", [ctx]).items()
            if not done.wait([rid], 60):
                raise RuntimeError("an anatomy task did not finish")
            events = anatomy.task_events(conn, rid=rid, task=done.task_of[rid],
                                         client=isinstance(sub, ClientSubmitter), clock=clock)
            samples.append((t0, events))
            if isinstance(sub, ClientSubmitter) and sub.wait:
                replies.append((t0 + sub.create_seconds[-1] - events["ingestion tx end"]) * 1000)
            probes.append(anatomy.commit_probe(conn))
    return Anatomy(label=sub.label, hops=anatomy.hops(samples), replies=replies,
                   notify=anatomy.notify_split(samples), probes=probes)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=200, help="W1 and W2 tasks (at once)")
    parser.add_argument("--sequential", type=int, default=30, help="W3 tasks (one at a time)")
    parser.add_argument("--fanouts", type=int, default=5, help="W4 tasks")
    parser.add_argument("--width", type=int, default=100, help="W4 parallel steps per task")
    parser.add_argument("--warmup", type=int, default=5, help="linear-4 runs before measuring")
    parser.add_argument("--workloads", default="W1,W2,W3,W4")
    parser.add_argument("--modes", default="client,client-batch,queue",
                        help=f"ways of submitting, comma-separated, of {', '.join(MODES)}")
    parser.add_argument("--rounds", type=int, default=1, help="round-robin repetitions")
    parser.add_argument("--anatomy", type=int, default=20,
                        help="idle linear-4 tasks per way of submitting for the anatomy (0: none)")
    parser.add_argument("--concurrency", type=int, default=16,
                        help="the worker's concurrent handlers (peers ran 16)")
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--settle", type=float, default=STATS_SETTLE_SECONDS,
                        help="seconds waited around each workload for PostgreSQL to publish "
                             "commit counters (less: faster, commits/step less exact)")
    parser.add_argument("--log-dir", type=Path, help="keep the services' logs here")
    parser.add_argument("--peers", default="",
                        help="peer systems run alongside, comma-separated, of "
                             f"{', '.join(peers.PACKAGES)} (default: none)")
    args = parser.parse_args(argv)
    peer_names = [p.strip() for p in args.peers.split(",") if p.strip()]
    if unknown := sorted(set(peer_names) - set(peers.PACKAGES)):
        parser.error(f"unknown peer(s) {', '.join(unknown)}; choose from "
                     f"{', '.join(peers.PACKAGES)}")
    peers.ensure_installed(peer_names)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if unknown := sorted(set(modes) - set(MODES)):
        parser.error(f"unknown mode(s) {', '.join(unknown)}; choose from {', '.join(MODES)}")
    chosen = {w.strip() for w in args.workloads.split(",")}
    plan = [w for w in workloads(tasks=args.tasks, sequential=args.sequential,
                                 fanouts=args.fanouts, width=args.width) if w.key in chosen]
    load_before = os.getloadavg()
    outcomes: list[Outcome] = []
    anatomies: list[Anatomy] = []
    with tempfile.TemporaryDirectory() as tmp, fresh_database() as url:
        server = server_version(url)
        with psycopg.connect(url, autocommit=True) as conn:
            walinspect = has_walinspect(conn)
            print(f"database {conn.info.dbname} (dropped at the end)", flush=True)
        paths = [str(templates_dir()), str(write_templates(Path(tmp), args.width))]
        c = cluster(url, namespace="examples", handlers="tasker_worker.examples.handlers",
                    templates=paths, replicas={"gateway": 1}, log_dir=args.log_dir,
                    extra_env={"TASKER_WORKER__MAX_CONCURRENT_HANDLERS": str(args.concurrency)})
        with c, Completions(url) as done:
            subs = {mode: submitter(mode, c, url) for mode in modes}
            running: list[peers.Peer] = []
            try:
                for sub in subs.values():
                    warm_up(sub, done, args.warmup)
                for name in peer_names:
                    print(f"starting peer {name}", flush=True)
                    running.append(peers.start(name, warmup=args.warmup, timeout=args.timeout,
                                               settle=args.settle,
                                               log_dir=args.log_dir or Path(tmp)))
                for _ in range(args.rounds):
                    for wl in plan:
                        for sub in subs.values():
                            outcome = run_workload(wl, sub, c, url, done,
                                                   timeout=args.timeout, settle=args.settle)
                            outcomes.append(outcome)
                            print(f"  {wl.title} via {sub.label}: {outcome.rate:.0f} steps/s, "
                                  f"p50 {outcome.p(50):.1f} ms", flush=True)
                        for peer in running:
                            outcome = peer.run(wl)
                            outcomes.append(outcome)
                            print(f"  {wl.title} on {peer.label}: {outcome.rate:.0f} steps/s, "
                                  f"p50 {outcome.p(50):.1f} ms", flush=True)
                if args.anatomy:
                    with psycopg.connect(url, autocommit=True) as conn:
                        anatomy.install_message_log(conn)
                    for sub in subs.values():
                        anatomies.append(idle_anatomy(sub, url, done, args.anatomy))
            finally:
                for sub in subs.values():
                    sub.close()
                for peer in running:
                    peer.close()
    load_after = os.getloadavg()
    print(f"\nTasker workload benchmark on PostgreSQL {server}; every service a separate "
          f"process (1 each), worker concurrency {args.concurrency}; {args.rounds} round(s), "
          "round-robin over the ways of submitting. Load average (1/5/15 min) "
          f"{'/'.join(f'{x:.1f}' for x in load_before)} before, "
          f"{'/'.join(f'{x:.1f}' for x in load_after)} after, on {os.cpu_count()} CPUs "
          "(other work on the machine counts in every figure).")
    print("CPU: psutil user+system of the Tasker processes (a peer's: its worker process with "
          "its children, and Celery's redis-server) and of this database's PostgreSQL "
          "backends (PostgreSQL's background processes left out); commits: pg_stat_database "
          "xact_commit (read-only ones included); write xacts and 'WAL (this db)': "
          + ("pg_walinspect records of this database" if walinspect else
             "n/a (pg_walinspect unavailable)")
          + "; 'WAL (server)': pg_current_wal_lsn() delta, every database on the server. "
          "Peers (bench/peers/): " + ("; ".join(p.description for p in running) or "none")
          + ".\n")
    workload_table(outcomes)
    wal_relations_table(outcomes)
    print()
    peers_table(outcomes, [s.label for s in subs.values()], f"concurrency {args.concurrency}",
                {p.label: p.description for p in running})
    for found in anatomies:
        anatomy_table(found)
    return 0


if __name__ == "__main__":
    sys.exit(main())
