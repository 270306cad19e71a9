"""SIGTERM of a real worker process while its handlers are finishing: every finished result
is recorded before it exits (no step runs twice), and it exits 0."""

from __future__ import annotations

import signal
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from tests.e2e.cluster_support import TEMPLATES, cluster_env, make_cluster
from tests.support import outcome, submit, wait_task

pytestmark = pytest.mark.e2e

TASKS = 30


def _steps(url: str, tasks: list[str]) -> list[dict[str, Any]]:
    with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
        return conn.execute(
            "SELECT ws.attempts, tasker.get_current_step_state_v1(ws.workflow_step_uuid) AS s,"
            " (SELECT min(t.created_at) FROM tasker.workflow_step_transitions t"
            "   WHERE t.workflow_step_uuid = ws.workflow_step_uuid"
            "     AND t.to_state = 'enqueued_for_orchestration') AS recorded_at"
            " FROM tasker.workflow_steps ws WHERE ws.task_uuid = ANY(%s::uuid[])",
            (tasks,)).fetchall()


def test_sigterm_records_every_finished_result_and_exits_0(db_url: str, tmp_path: Path) -> None:
    env = cluster_env(namespaces=["wrt"], handlers=["tests.e2e.worker_handlers"],
                      templates=[str(TEMPLATES / "worker")],
                      TASKER_WORKER__MAX_CONCURRENT_HANDLERS="40",
                      TASKER_QUEUES__VISIBILITY_TIMEOUT_SECONDS="2",
                      TASKER_SERVICE__SHUTDOWN_TIMEOUT_SECONDS="15")
    with make_cluster(db_url, tmp_path / "logs", env=env) as cluster:
        # Every handler runs until the same instant, after the signal: they finish during
        # the drain, together, while the executors leave and close the results channel.
        until = time.time() + 8.0
        rids = [submit(db_url, "wrt_drain", {"until": until,
                                              "nonce": uuid.uuid4().hex}, namespace="wrt")
                for i in range(TASKS)]
        tasks = [str(outcome(db_url, rid)["task_uuid"]) for rid in rids]
        deadline = time.monotonic() + 30
        while any(r["attempts"] != 1 for r in _steps(db_url, tasks)):
            assert time.monotonic() < deadline, "the worker did not start the steps"
            time.sleep(0.02)
        worker = cluster.get("worker")
        assert worker.popen is not None
        signalled = datetime.now(UTC)
        worker.popen.send_signal(signal.SIGTERM)
        assert worker.popen.wait(timeout=30) == 0
        # No worker runs any more: a result lost in the drain would leave its step in
        # progress (and with max_attempts 1, a re-run could only fail it).
        for task in tasks:
            assert wait_task(db_url, task, timeout=20) == "complete"
        rows = _steps(db_url, tasks)
    assert [(r["attempts"], r["s"]) for r in rows] == [(1, "complete")] * TASKS
    drained = sum(1 for r in rows if r["recorded_at"] > signalled)
    assert drained >= TASKS // 2, f"only {drained} results were recorded during the drain"
