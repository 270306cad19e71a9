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

from tasker_cli.cluster import free_port, health
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


@pytest.mark.parametrize("flags", [[], ["--no-gateway"]], ids=["through-gateway", "queue-only"])
def test_demo_runs_sample_workflows_and_exits_zero(db_url: str, flags: list[str]) -> None:
    proc = subprocess.run([sys.executable, "-m", "tasker_cli", "demo", *flags],
                          env=_env(db_url), capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "all tasks completed" in out
    for name in ("linear_workflow", "diamond_workflow", "flaky_workflow"):
        assert f"{name} → complete" in out
    assert "'value': 65536" in out  # linear: 2 squared four times
    assert ("through the gateway" in out) is (not flags)


def test_up_starts_everything_and_stops_on_ctrl_c(db_url: str) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "tasker_cli", "up", "--no-gateway",
                             "--replicas", "results=2"],
                            env=_env(db_url), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        seen = ""
        assert proc.stdout is not None
        while "Ctrl-C stops them" not in seen:  # after the endpoints, on stdout
            assert time.monotonic() < deadline, seen
            line = proc.stdout.readline()
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


def test_cli_worker_and_visibility_extension(db_url: str, tmp_path: Path) -> None:
    """`tasker worker ...` runs the handlers; a step longer than the visibility timeout is
    not handed to anyone else because the worker keeps extending it."""
    env = cluster_env(namespaces=["e2e"], handlers=["tests.e2e.pipeline_handlers"],
                      templates=[str(TEMPLATES / "pipeline")],
                      TASKER_QUEUES__VISIBILITY_TIMEOUT_SECONDS="1")
    cluster = make_cluster(db_url, tmp_path / "logs", env=env, replicas={"worker": 0})
    with cluster:
        port = free_port()
        worker_env = {**_env(db_url), **env, "TASKER_SERVICE__HEALTH_PORT": str(port)}
        worker = subprocess.Popen(
            [sys.executable, "-m", "tasker_cli", "worker", "--namespace", "e2e",
             "--handlers", "tests.e2e.pipeline_handlers",
             "--templates", str(TEMPLATES / "pipeline" / "*.yaml"), "--concurrency", "4"],
            env=worker_env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=open(tmp_path / "cli-worker.log", "wb"))  # noqa: SIM115
        try:
            deadline = time.monotonic() + 30
            while health(port, "/health/ready") is None:
                assert worker.poll() is None and time.monotonic() < deadline
                time.sleep(0.05)
            rid = submit(db_url, "e2e_graceful", {"nonce": uuid.uuid4().hex}, namespace="e2e")
            task = outcome(db_url, rid)["task_uuid"]
            assert wait_task(db_url, task, timeout=30) == "complete"
            assert steps_of(db_url, task)["grace_sleep"]["attempts"] == 1  # 1.5 s > vt 1 s
        finally:
            worker.send_signal(signal.SIGTERM)
            assert worker.wait(timeout=20) == 0
