"""Whole-process behaviour: graceful shutdown, `tasker demo`, `tasker up`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.e2e.cluster_support import ROOT, TEMPLATES, cluster_env, make_cluster
from tests.support import outcome, steps_of, submit, wait_task

pytestmark = pytest.mark.e2e


def test_sigterm_lets_the_running_step_finish(db_url: str, tmp_path: Path) -> None:
    env = cluster_env(namespaces=["e2e"], handlers=["tests.e2e.pipeline_handlers"],
                      templates=[str(TEMPLATES / "pipeline")])
    with make_cluster(db_url, tmp_path / "logs", env=env) as cluster:
        rid = submit(db_url, "e2e_graceful", {"nonce": uuid.uuid4().hex}, namespace="e2e")
        task = outcome(db_url, rid)["task_uuid"]
        deadline = time.monotonic() + 15
        while steps_of(db_url, task)["grace_sleep"]["current_state"] != "in_progress":
            assert time.monotonic() < deadline
            time.sleep(0.02)
        worker = cluster.get("worker")
        assert worker.popen is not None
        worker.popen.send_signal(signal.SIGTERM)  # mid-step: intake stops, the step finishes
        assert worker.popen.wait(timeout=15) == 0
        assert wait_task(db_url, task, timeout=15) == "complete"
        assert steps_of(db_url, task)["grace_sleep"]["attempts"] == 1


def _env(db_url: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"TASKER_DATABASE_URL": db_url, "TASKER_BACKOFF__BASE_SECONDS": "0.05",
                "TASKER_BACKOFF__JITTER_ENABLED": "false", "PYTHONPATH": str(ROOT),
                "COLUMNS": "200"})
    return env


def test_demo_runs_sample_workflows_and_exits_zero(db_url: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "tasker_cli", "demo", "--no-gateway"],
                          env=_env(db_url), capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "all tasks completed" in out
    for name in ("linear_workflow", "diamond_workflow", "flaky_workflow"):
        assert f"{name} → complete" in out
    assert "'value': 65536" in out  # linear: 2 squared four times


def test_up_starts_everything_and_stops_on_ctrl_c(db_url: str) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "tasker_cli", "up", "--no-gateway",
                             "--replicas", "results=2"],
                            env=_env(db_url), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        seen = ""
        assert proc.stderr is not None
        while "all services running" not in seen:
            assert time.monotonic() < deadline, seen
            line = proc.stderr.readline()
            assert line, seen
            seen += line
        assert "results-1" in seen
        rid = submit(db_url, "linear_workflow", {"even_number": 2}, namespace="examples")
        assert wait_task(db_url, outcome(db_url, rid)["task_uuid"]) == "complete"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
