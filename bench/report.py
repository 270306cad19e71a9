"""Printing the workload benchmark's figures: per-workload costs, the peers table of
shared/PEERS.md next to this run's (Tasker's and, with --peers, the peers'), and the latency
anatomy."""

from __future__ import annotations

from dataclasses import dataclass

from bench.anatomy import Hop, grouped
from bench.common import percentile, print_table
from bench.meter import Cost

# shared/PEERS.md, "Same-run figures with Tasker (2026-12-07, round-robin, ranges over
# rounds)": W1 steps/s, W2 steps/s, W3 p50 ms, W4 steps/s. Printed labelled as quoted.
PEERS_SAME_RUN: list[tuple[str, ...]] = [
    ("Procrastinate 3.10 (1 worker x 16 / 2 workers)", "69-338 / 347-362", "74-345 / 100-303",
     "19-76 / 22-85", "62-386 / 225-398"),
    ("Celery 5.7 + Redis, prefork 8", "350-431", "268-380", "12.6-13.2", "287-335"),
    ("DBOS 3.4 in-process", "174-202", "70-75", "25-38", "58-77"),
    ("Tasker client, that run (worker concurrency 16)", "68-130", "63-142", "56-61", "312-328"),
    ("Tasker queue, that run (concurrency 100)", "398-508", "523-595", "44-59", "586-744"),
]
PEERS_COST = ("Peers' cost per step (shared/PEERS.md): Procrastinate ≈ 3 write transactions, "
              "2.3-3.1 KB WAL, 2.6-3.2 ms CPU in total; DBOS linear ≈ 1.5 write transactions, "
              "4-5 ms CPU; DBOS parallel steps 3-4 write transactions, 13-16 ms CPU. "
              "Issue 18's run: Tasker 10-12 KB WAL per step; via the client 13.7-15.9 ms CPU per "
              "W1 step (queue 3.6-5.5 ms), Procrastinate 4.2-4.5 ms.")


@dataclass(frozen=True, kw_only=True, slots=True)
class Outcome:
    """One workload run with one way of submitting."""
    workload: str
    title: str
    mode: str
    steps: int
    wall: float
    latencies: list[float]
    cost: Cost

    @property
    def rate(self) -> float:
        return self.steps / self.wall

    def p(self, pct: float) -> float:
        return percentile(self.latencies, pct) * 1000


def _span(values: list[float], fmt: str) -> str:
    lo, hi = min(values), max(values)
    return format(lo, fmt) if format(lo, fmt) == format(hi, fmt) else \
        f"{format(lo, fmt)}-{format(hi, fmt)}"


def _optional(values: list[float | None], fmt: str, scale: float = 1.0) -> str:
    known = [v / scale for v in values if v is not None]
    return _span(known, fmt) if known else "n/a"


def workload_table(outcomes: list[Outcome]) -> None:
    """One row per workload and way of submitting (ranges over rounds)."""
    keys = list(dict.fromkeys((o.title, o.mode) for o in outcomes))
    rows = []
    for title, mode in keys:
        runs = [o for o in outcomes if (o.title, o.mode) == (title, mode)]
        per = [o.cost.per_step(o.steps) for o in runs]

        def col(name: str, fmt: str, scale: float = 1.0, per: list[dict[str, float | None]]
                = per) -> str:
            return _optional([p[name] for p in per], fmt, scale)

        rows.append((
            title, mode, _span([o.rate for o in runs], ".0f"),
            _span([o.p(50) for o in runs], ".1f"), _span([o.p(95) for o in runs], ".1f"),
            _span([o.p(99) for o in runs], ".1f"),
            f"{col('cpu_ms', '.2f')} ({col('cpu_tasker_ms', '.2f')} + "
            f"{col('cpu_postgres_ms', '.2f')})",
            col("commits", ".2f"), col("write_xacts", ".2f"),
            col("wal_database", ".1f", 1024), col("wal_server", ".1f", 1024),
        ))
    print_table(("workload", "submit", "steps/s", "p50 ms", "p95 ms", "p99 ms",
                 "CPU ms/step (system + PG backends)", "commits/step", "write xacts/step",
                 "WAL KB/step (this db)", "WAL KB/step (server)"), rows)


def wal_relations_table(outcomes: list[Outcome]) -> None:
    """Where each workload's WAL went (its first run per way of submitting): bytes per step
    by table and index, the biggest first."""
    seen: set[tuple[str, str]] = set()
    for o in outcomes:
        if (o.title, o.mode) in seen or not o.cost.wal_relations:
            continue
        seen.add((o.title, o.mode))
        print(f"\nWAL per step by relation, {o.title} via {o.mode}:")
        print_table(("relation", "bytes/step"),
                    [(name, f"{size / o.steps:.0f}") for name, size in o.cost.wal_relations])


def _row_cells(outcomes: list[Outcome], mode: str) -> list[str]:
    cells = []
    for key, fmt in (("W1", "rate"), ("W2", "rate"), ("W3", "p50"), ("W4", "rate")):
        runs = [o for o in outcomes if o.workload == key and o.mode == mode]
        if not runs:
            cells.append("—")
        elif fmt == "rate":
            cells.append(_span([o.rate for o in runs], ".0f"))
        else:
            cells.append(_span([o.p(50) for o in runs], ".1f"))
    return cells


def peers_table(outcomes: list[Outcome], modes: list[str], label: str,
                peers: dict[str, str] | None = None) -> None:
    """shared/PEERS.md's same-run figures (quoted) with this run's rows under them: Tasker's
    ways of submitting, then the peers measured in this run (`peers`: label -> description)."""
    rows = [(f"{name} [PEERS.md, 2026-12-07]", *cells) for name, *cells in PEERS_SAME_RUN]
    for mode in modes:
        rows.append((f"**Tasker {mode}, this run** ({label})", *_row_cells(outcomes, mode)))
    for mode, description in (peers or {}).items():
        rows.append((f"**{description}, this run**", *_row_cells(outcomes, mode)))
    print_table(("system", "W1 steps/s", "W2 steps/s", "W3 p50 ms", "W4 steps/s"), rows)
    print("\n" + PEERS_COST)


@dataclass(frozen=True, kw_only=True, slots=True)
class Anatomy:
    """The anatomy of idle linear-4 tasks submitted one way (see bench/anatomy.py)."""
    label: str
    hops: list[Hop]
    replies: list[float]  # ms from ingestion's last write to the create call's return
    notify: dict[str, tuple[float, float]] | None
    probes: list[tuple[float, float]]  # ms of a durable and an asynchronous commit


def anatomy_table(found: Anatomy) -> None:
    hop_list = found.hops
    runs = len(hop_list[0].ms) if hop_list else 0
    total = sum(h.median for h in hop_list)
    print(f"\nLatency anatomy, idle linear-4 via {found.label} ({runs} tasks one after another;"
          f" medians, sum {total:.1f} ms):\n")
    rows = [(f"→ {h.event}", h.what, f"{h.median:.2f}", f"{min(h.ms):.2f}", f"{max(h.ms):.2f}")
            for h in hop_list]
    print_table(("hop (into)", "made of", "p50 ms", "min", "max"), rows)
    print("\nBy kind (medians summed over the task's hops, largest first):\n")
    print_table(("made of", "ms"), [(what, f"{ms:.2f}") for what, ms in grouped(hop_list)])
    if found.notify:
        print("\nNOTIFYs as an outside listener heard them (median ms; a negative 'heard -> "
              "consumer's tx start': the consumer began without waiting for it, e.g. it claimed "
              "the step in the transaction that enqueued it): "
              + "; ".join(f"{name}: sent -> heard {a:.2f}, heard -> consumer's tx start {b:.2f}"
                          for name, (a, b) in found.notify.items()))
    if found.probes:
        durable = [p[0] for p in found.probes]
        fast = [p[1] for p in found.probes]
        print(f"A one-row commit on this server after each task: waiting for the WAL flush p50 "
              f"{percentile(durable, 50):.2f} ms (p90 {percentile(durable, 90):.2f}), without "
              f"{percentile(fast, 50):.2f} ms (p90 {percentile(fast, 90):.2f}).")
    if found.replies:
        print(f"The create call returned {percentile(found.replies, 50):.1f} ms (p50) after "
              "ingestion's last write (commit, outcome NOTIFY -> gateway -> task read -> "
              "reply).")
