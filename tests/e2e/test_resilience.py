"""Replicas and crashes: several processes per service, and kill -9 of each service."""

from __future__ import annotations

import signal
import time
import uuid
from pathlib import Path

import psycopg
import pytest
from psycopg.rows import dict_row

from tests.e2e.cluster_support import TEMPLATES, cluster_env, make_cluster
from tests.support import submit

pytestmark = pytest.mark.e2e

HANDLERS = "tests.e2e.pipeline_handlers"


def _env(**extra: str) -> dict[str, str]:
    return cluster_env(namespaces=["e2e"], handlers=[HANDLERS],
                       templates=[str(TEMPLATES / "pipeline")],
                       TASKER_SERVICE__LOG_LEVEL="WARNING", **extra)


def _submit_many(url: str, count: int, name: str = "e2e_linear") -> list[str]:
    return [submit(url, name, {"n": i, "nonce": uuid.uuid4().hex}, namespace="e2e")
            for i in range(count)]


def _wait_all(url: str, request_ids: list[str], timeout: float) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    states: dict[str, str] = {}
    with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
        while time.monotonic() < deadline:
            rows = conn.execute(
                "SELECT o.request_id, tasker.get_current_task_state_v1(o.task_uuid) AS s"
                " FROM tasker.task_request_outcomes o WHERE o.request_id = ANY(%s)",
                (request_ids,)).fetchall()
            states = {r["request_id"]: r["s"] for r in rows}
            if len(states) == len(request_ids) and all(s == "complete" for s in states.values()):
                return states
            time.sleep(0.2)
    return states


def _transition_counts(url: str) -> list[dict[str, object]]:
    with psycopg.connect(url, row_factory=dict_row) as conn:
        return conn.execute(
            "SELECT ws.workflow_step_uuid, ws.attempts, count(t.*) AS n,"
            " count(DISTINCT t.to_state) AS states"
            " FROM tasker.workflow_steps ws JOIN tasker.workflow_step_transitions t"
            " ON t.workflow_step_uuid = ws.workflow_step_uuid GROUP BY 1, 2").fetchall()


def test_two_replicas_of_everything_200_tasks(db_url: str, tmp_path: Path) -> None:
    replicas = {"ingestion": 2, "results": 2, "finalizer": 2, "worker": 2}
    env = _env(TASKER_QUEUES__VISIBILITY_TIMEOUT_SECONDS="30")
    with make_cluster(db_url, tmp_path / "logs", replicas=replicas, env=env):
        request_ids = _submit_many(db_url, 200)
        states = _wait_all(db_url, request_ids, timeout=90)
    assert len(states) == 200
    assert set(states.values()) == {"complete"}
    rows = _transition_counts(db_url)
    assert len(rows) == 800
    # pending -> enqueued -> in_progress -> enqueued_for_orchestration -> complete, once each
    assert {(r["attempts"], r["n"], r["states"]) for r in rows} == {(1, 5, 5)}
    with psycopg.connect(db_url, row_factory=dict_row) as conn:
        dup = conn.execute(
            "SELECT task_uuid, to_state, count(*) FROM tasker.task_transitions"
            " WHERE to_state IN ('complete', 'initializing') GROUP BY 1, 2 HAVING count(*) > 1"
        ).fetchall()
    assert dup == []


@pytest.mark.parametrize("service", ["ingestion", "results", "finalizer"])
def test_kill_9_orchestration_service_loses_nothing(db_url: str, tmp_path: Path,
                                                    service: str) -> None:
    with make_cluster(db_url, tmp_path / "logs", env=_env()) as cluster:
        first = _submit_many(db_url, 40, "e2e_diamond")
        time.sleep(0.15)  # let some of them get going
        cluster.kill(service, 0, signal.SIGKILL)
        second = _submit_many(db_url, 20, "e2e_diamond")  # sent while the service is down
        time.sleep(0.5)
        cluster.restart(service)
        states = _wait_all(db_url, first + second, timeout=60)
    assert len(states) == 60, f"lost {60 - len(states)} requests"
    assert set(states.values()) == {"complete"}
