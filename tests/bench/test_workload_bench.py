"""The workload benchmark runs end to end on a tiny workload (so it cannot rot): every workload
through the client and straight into the queue, costs, the peers table and the anatomy."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from tasker_shared.db.connect import with_database

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.e2e


def test_workload_bench_tiny(pg_server: str) -> None:
    env = dict(os.environ, TASKER_DATABASE_URL=pg_server, PYTHONPATH=str(ROOT))
    run = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "workload_bench.py"), "--tasks", "3",
         "--sequential", "2", "--fanouts", "1", "--width", "3", "--warmup", "0",
         "--anatomy", "1", "--settle", "0", "--modes", "client,queue"],
        env=env, capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    out = run.stdout
    for title in ("W1 3 linear-4 at once", "W2 3 diamond at once",
                  "W3 2 linear-4 one after another", "W4 1 x fan-out of 3"):
        for mode in ("client", "queue"):
            assert re.search(rf"\| {re.escape(title)} +\| {mode} +\| \d+ ", out), (title, mode)
    assert re.search(r"\*\*Tasker client, this run\*\* .*\| \d+ +\| \d+ +\| [\d.]+ +\| \d+ +\|", out)
    assert "Celery 5.7 + Redis" in out  # the peers' figures
    assert "Latency anatomy, idle linear-4 via client" in out
    assert "Latency anatomy, idle linear-4 via queue" in out
    # (its "made of" column depends on whether a record's transaction claimed it; claimed as
    # it was enqueued, by a record's hand-off, it shares its row with "enqueued")
    assert re.search(r"\| → [^|]*step 4: claimed[^|]*\| [^|]+\| [\d.]+", out)
    assert re.search(r"\| → task complete written .*\| [\d.]+ +\|", out)
    assert "→ gateway stamped request" in out  # the client path has the gateway's hop
    # its database was its own, and is gone
    name = re.search(r"^database (\S+) ", out, re.M)
    assert name is not None
    with psycopg.connect(with_database(pg_server, "postgres")) as conn:
        row = conn.execute("SELECT count(*) FROM pg_database WHERE datname = %s",
                           (name.group(1),)).fetchone()
    assert row == (0,)
