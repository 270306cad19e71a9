"""Batch benchmark: a 1,000-row CSV through analyse + 5 batch workers + aggregate, end to end
with every service a separate process (hybrid mode).

    python bench/batch_bench.py [--runs 20] [--rows 1000]

Latency is from sending the task request to the task reaching `complete`, one task at a
time, after a few warm-up runs; each run's aggregate total is checked against the file.
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (
    Completions,
    cluster,
    fresh_database,
    percentile,
    send_requests,
    summary_ms,
)
from tasker_worker.examples import templates_dir

REFERENCE = "Rust reference (published): 358-368 ms. Target: p50 <= 150 ms."
WARMUP = 3


def write_csv(path: Path, rows: int) -> int:
    """A products CSV; returns the expected sum of quantity * price_cents."""
    total = 0
    with path.open("w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle)
        out.writerow(["id", "sku", "quantity", "price_cents"])
        for i in range(rows):
            quantity, price = (i * 7) % 50 + 1, 100 + (i * 13) % 900
            total += quantity * price
            out.writerow([i + 1, f"SKU-{i + 1:05d}", quantity, price])
    return total


def aggregate_value(conn: psycopg.Connection[tuple[object, ...]], task: str) -> object:
    row = conn.execute(
        "SELECT ws.results -> 'result' ->> 'value_cents' FROM tasker.workflow_steps ws"
        " JOIN tasker.named_steps ns ON ns.named_step_uuid = ws.named_step_uuid"
        " WHERE ws.task_uuid = %s AND ns.name = 'aggregate_csv_results'", (task,)).fetchone()
    return int(str(row[0])) if row and row[0] is not None else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--rows", type=int, default=1000)
    args = parser.parse_args()
    latencies: list[float] = []
    with tempfile.TemporaryDirectory() as tmp, fresh_database() as url:
        path = Path(tmp) / "products.csv"
        expected = write_csv(path, args.rows)
        c = cluster(url, namespace="examples", handlers="tasker_worker.examples.handlers",
                    templates=str(templates_dir()))
        with c, Completions(url) as tracker, psycopg.connect(url, autocommit=True) as conn:
            for i in range(args.runs + WARMUP):
                t0 = time.time()
                (rid,) = send_requests(conn, "csv_batch", [
                    {"csv_file_path": str(path), "run": uuid.uuid4().hex}])
                if not tracker.wait([rid], 30):
                    print(f"run {i} did not finish", file=sys.stderr)
                    return 1
                task = tracker.task_of[rid]
                if tracker.final_state[task] != "complete":
                    print(f"run {i} ended {tracker.final_state[task]}", file=sys.stderr)
                    return 1
                if aggregate_value(conn, task) != expected:
                    print(f"run {i}: wrong aggregate total", file=sys.stderr)
                    return 1
                if i >= WARMUP:
                    latencies.append(tracker.done_at[task] - t0)
    p50 = percentile(latencies, 50) * 1000
    print(f"\nTasker batch benchmark: {args.rows}-row CSV, analyse + "
          f"{-(-args.rows // 200)} workers + aggregate, {args.runs} runs")
    print(f"end to end: {summary_ms(latencies)}")
    print(REFERENCE + f"  Measured p50 {p50:.1f} ms: "
          + ("within target." if p50 <= 150 else "OVER TARGET."))
    return 0


if __name__ == "__main__":
    sys.exit(main())
