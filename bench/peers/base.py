"""What the peers share: the workload's shape, the measuring loop (submit, wait for the
system's own completion records, cost via bench.meter.Meter) and their worker processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import IO

from bench.meter import Meter
from bench.report import Outcome
from bench.workloads import Workload

ROOT = Path(__file__).resolve().parents[2]
WARMUP_TIMEOUT = 120.0


def shape(wl: Workload) -> int:
    """0 for linear-4; else the width of A -> `width` parallel steps -> join (diamond: 2)."""
    if wl.template == "linear_workflow":
        return 0
    if wl.template == "diamond_workflow":
        return 2
    if wl.template.startswith("bench_fanout_"):
        return wl.steps_per_task - 2
    raise ValueError(f"no peer version of template {wl.template!r}")


def new_ids(n: int) -> list[str]:
    run = uuid.uuid4().hex[:12]
    return [f"{run}-{i}" for i in range(n)]


class PeerBase:
    """Runs a workload the way workload_bench.run_workload does for Tasker. Subclasses say how
    to submit workflows (`_submit`: {workflow id: time.time() just before the submit call})
    and when each finished (`_wait`: {workflow id: epoch seconds of the system's completion
    record of its last step}, every id, or raise), and start and stop its worker process.

    A peer whose idle worker costs CPU (Procrastinate polls every 10 ms) sets
    `idle_worker = False`: its worker then runs only around its own workloads (started and
    warmed up with one linear-4 before the measured window, stopped after), so it does not
    weigh on the other systems' runs."""

    label = "peer"
    description = "peer"
    db_url: str | None = None  # the peer's PostgreSQL database, if it has one
    idle_worker = True  # False: the worker runs only during this peer's workloads

    def __init__(self, *, timeout: float, settle: float) -> None:
        self.timeout = timeout
        self.settle = settle
        self.worker: subprocess.Popen[bytes] | None = None

    def pids(self) -> list[int]:
        raise NotImplementedError

    def _start_worker(self) -> None:
        raise NotImplementedError

    def _stop_worker(self) -> None:
        if self.worker is not None:
            stop(self.worker)
            self.worker = None

    def _submit(self, width: int, ids: list[str]) -> dict[str, float]:
        raise NotImplementedError

    def _wait(self, submitted: dict[str, float], timeout: float) -> dict[str, float]:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def start(self, warmup: int) -> None:
        """Start the worker and warm up with `warmup` linear-4 workflows."""
        self._start_worker()
        self.warm_up(warmup)
        if not self.idle_worker:
            self._stop_worker()

    def warm_up(self, runs: int) -> None:
        for wf in new_ids(runs):
            self._wait(self._submit(0, [wf]), WARMUP_TIMEOUT)

    def run(self, wl: Workload) -> Outcome:
        if self.idle_worker:
            return self._measure(wl)
        self._start_worker()
        try:
            self.warm_up(1)  # the worker is up and connected
            return self._measure(wl)
        finally:
            self._stop_worker()

    def _measure(self, wl: Workload) -> Outcome:
        width = shape(wl)
        submitted: dict[str, float] = {}
        done: dict[str, float] = {}
        with Meter(self.db_url, self.pids(), settle=self.settle) as meter:
            if wl.at_once:
                submitted = self._submit(width, new_ids(wl.tasks))
                done = self._wait(submitted, self.timeout)
            else:
                for wf in new_ids(wl.tasks):
                    one = self._submit(width, [wf])
                    submitted.update(one)
                    done.update(self._wait(one, self.timeout))
            meter.stop()
        assert meter.cost is not None
        return Outcome(workload=wl.key, title=wl.title, mode=self.label,
                       steps=wl.steps_per_task * wl.tasks,
                       wall=max(done.values()) - min(submitted.values()),
                       latencies=[done[wf] - t0 for wf, t0 in submitted.items()],
                       cost=meter.cost)


def spawn(args: list[str], *, env: dict[str, str], log: IO[bytes]) -> subprocess.Popen[bytes]:
    """A worker process (in its own session, so stopping it reaches its children too)."""
    full = {**os.environ, "PYTHONPATH": str(ROOT), **env}
    return subprocess.Popen(args, env=full, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True)


def worker_command(module: str, *args: str) -> list[str]:
    """The command running `python -m module args` with the peers' packages importable."""
    return [sys.executable, "-m", "bench.peers.launch", module, *args]


def stop(proc: subprocess.Popen[bytes], *, grace: float = 15.0) -> None:
    """SIGTERM (a warm shutdown), then SIGKILL to its process group after `grace` s."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def check_alive(proc: subprocess.Popen[bytes], what: str, log: Path) -> None:
    if proc.poll() is not None:
        tail = log.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"{what} exited with {proc.returncode}:\n{tail}")


def wait_until(deadline: float) -> float:
    """Seconds left before `deadline` (time.monotonic()), raising when none are."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError
    return left
