"""Procrastinate 3.10 (psycopg 3 connector) as a peer: its own fresh database on the benchmark's
PostgreSQL server (created here, dropped at the end), one worker process
(Procrastinate's CLI `worker` on bench/peers/procrastinate_tasks.py's app: concurrency 16,
LISTEN/NOTIFY on, fetch_job_polling_interval 10 ms, async tasks, a pool of up to 20
connections).
Workflows are submitted from the benchmark process through a SyncPsycopgConnector app:
several at once in one `batch_defer` call, one alone with `defer`.

- linear-4: job `bench_linear` step 1; each step defers the next (`defer_async` inside the
  task, before it returns), step 4 is the last.
- diamond and fan-out: job `bench_split` (A) inserts a counter row `bench_joins(wf,
  remaining = width)` and `batch_defer_async`s the `width` parallel `bench_branch` jobs; each
  of those decrements the counter (adding its value to a total) in one UPDATE ... RETURNING,
  and the one that reaches 0 defers the join `bench_join` (Procrastinate has no join or
  workflow feature of its own). Not exactly-once: a branch retried after its UPDATE would count
  twice; the benchmark retries nothing.

Completion: the `at` of the 'succeeded' row in procrastinate_events (written by
Procrastinate's status trigger in the transaction that finished the job: its start time,
PostgreSQL's clock) of the workflow's last job (args.last = true). A job that failed, was
cancelled or aborted fails the run."""

from __future__ import annotations

import time
from contextlib import ExitStack
from importlib.metadata import version
from pathlib import Path
from typing import Any

import procrastinate
import psycopg

from bench.common import fresh_database
from bench.peers.base import PeerBase, check_alive, spawn, worker_command
from bench.peers.procrastinate_tasks import CONCURRENCY, JOINS_DDL, POLL_SECONDS, URL_ENV

_FINISHED = """
SELECT j.args->>'wf', j.status::text, extract(epoch FROM e.at)::float8
  FROM procrastinate_jobs j
  LEFT JOIN procrastinate_events e ON e.job_id = j.id AND e.type = 'succeeded'
 WHERE j.args->>'wf' = ANY (%s)
   AND (j.status IN ('failed', 'cancelled', 'aborted')
        OR (j.status = 'succeeded' AND j.args @> '{"last": true}'))"""


class ProcrastinatePeer(PeerBase):
    label = "procrastinate"
    idle_worker = False  # idle, it polls every 10 ms: it runs only for its own workloads

    def __init__(self, *, warmup: int, timeout: float, settle: float, log_dir: Path) -> None:
        super().__init__(timeout=timeout, settle=settle)
        self.description = (f"Procrastinate {version('procrastinate')} (1 worker, "
                            f"concurrency {CONCURRENCY}, LISTEN/NOTIFY, "
                            f"{POLL_SECONDS * 1000:.0f} ms poll)")
        self._stack = ExitStack()
        try:
            self.db_url = url = self._stack.enter_context(
                fresh_database(tasker_schema=False, prefix="procrastinate_bench"))
            self.app = procrastinate.App(
                connector=procrastinate.SyncPsycopgConnector(conninfo=url))
            self.app.open()
            self._stack.callback(self.app.close)
            self.app.schema_manager.apply_schema()
            self.conn = self._stack.enter_context(psycopg.connect(url, autocommit=True))
            self.conn.execute(JOINS_DDL)
            self.log = log_dir / "procrastinate-worker.log"
            self._log = self._stack.enter_context(self.log.open("wb"))
            self._stack.callback(self._stop_worker)
            self.start(warmup)
        except BaseException:
            self._stack.close()
            raise

    def _start_worker(self) -> None:
        self.worker = spawn(worker_command(
            "procrastinate", "--app", "bench.peers.procrastinate_tasks.app", "worker",
            "--concurrency", str(CONCURRENCY), "--listen-notify",
            "--fetch-job-polling-interval", str(POLL_SECONDS)),
            env={URL_ENV: self.db_url or ""}, log=self._log)

    def pids(self) -> list[int]:
        assert self.worker is not None
        return [self.worker.pid]

    def _submit(self, width: int, ids: list[str]) -> dict[str, float]:
        data = {"value": 2}
        kwargs: list[dict[str, Any]]
        if width == 0:
            task = "bench_linear"
            kwargs = [{"wf": wf, "step": 1, "data": data, "last": False} for wf in ids]
        else:
            task = "bench_split"
            kwargs = [{"wf": wf, "width": width, "data": data} for wf in ids]
        deferrer = self.app.configure_task(task)
        t0 = time.time()
        if len(kwargs) == 1:
            deferrer.defer(**kwargs[0])
        else:
            deferrer.batch_defer(*kwargs)
        return dict.fromkeys(ids, t0)

    def _wait(self, submitted: dict[str, float], timeout: float) -> dict[str, float]:
        deadline = time.monotonic() + timeout
        pause = 0.005 if len(submitted) == 1 else 0.05
        pending = list(submitted)
        done: dict[str, float] = {}
        while pending:
            for wf, status, at in self.conn.execute(_FINISHED, (pending,)).fetchall():
                if status != "succeeded":
                    raise RuntimeError(f"procrastinate workflow {wf}: a job ended {status}")
                done[wf] = at
            pending = [wf for wf in pending if wf not in done]
            if pending:
                assert self.worker is not None
                check_alive(self.worker, "the procrastinate worker", self.log)
                if time.monotonic() > deadline:
                    raise RuntimeError(f"procrastinate: {len(pending)} workflow(s) unfinished "
                                       f"after {timeout:.0f} s (log {self.log})")
                time.sleep(pause)
        return done

    def close(self) -> None:
        self._stack.close()
