"""The orchestration pipeline end to end: every service a real process, real PostgreSQL."""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from tasker_cli.cluster import Cluster
from tests.e2e.cluster_support import TEMPLATES, cluster_env, make_cluster
from tests.support import outcome, steps_of, submit, wait_task

pytestmark = pytest.mark.e2e

HANDLERS = "tests.e2e.pipeline_handlers"


def pipeline_env(**extra: Any) -> dict[str, str]:
    return cluster_env(namespaces=["e2e"], handlers=[HANDLERS],
                       templates=[str(TEMPLATES / "pipeline")], **extra)


@pytest.fixture(scope="module")
def cluster(module_db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with make_cluster(module_db_url, tmp_path_factory.mktemp("logs"), env=pipeline_env()) as c:
        yield c


def run_task(url: str, name: str, context: dict[str, Any] | None = None,
             timeout: float = 30.0) -> tuple[str, str]:
    ctx = {"n": 1, **(context or {}), "nonce": uuid.uuid4().hex}  # strict identity: unique
    rid = submit(url, name, ctx, namespace="e2e")
    out = outcome(url, rid)
    assert out["outcome"] == "created", out
    return str(out["task_uuid"]), wait_task(url, out["task_uuid"], timeout=timeout)


def values(url: str, task: str) -> dict[str, int]:
    return {name: row["results"]["result"]["value"]
            for name, row in steps_of(url, task).items()
            if row["results"] and row["results"].get("success")}


def test_linear_results_flow_down(cluster: Cluster) -> None:
    task, state = run_task(cluster.database_url, "e2e_linear", {"n": 5})
    assert state == "complete"
    assert values(cluster.database_url, task) == {"lin_a": 6, "lin_b": 7, "lin_c": 8, "lin_d": 9}
    # a step sees the results of all its transitive ancestors
    assert steps_of(cluster.database_url, task)["lin_d"]["results"]["result"]["saw"] == [
        "lin_a", "lin_b", "lin_c"]


def test_diamond(cluster: Cluster) -> None:
    task, state = run_task(cluster.database_url, "e2e_diamond", {"n": 1})
    assert state == "complete"
    assert values(cluster.database_url, task) == {"dia_a": 2, "dia_b": 12, "dia_c": 102,
                                                  "dia_d": 115}


def test_tree_four_way_fan_in(cluster: Cluster) -> None:
    task, state = run_task(cluster.database_url, "e2e_tree", {"n": 0})
    assert state == "complete"
    v = values(cluster.database_url, task)
    assert len(v) == 8
    assert v["tree_join"] == 4 * 3 + 1  # root 1, level-2 nodes 2, leaves 3 each


def test_mixed_dag(cluster: Cluster) -> None:
    task, state = run_task(cluster.database_url, "e2e_mixed", {"n": 0})
    assert state == "complete"
    v = values(cluster.database_url, task)
    assert v["mix_4"] == 2 + 2 + 1
    assert v["mix_7"] == v["mix_4"] + v["mix_5"] + v["mix_6"] + 1


def test_permanent_failure_blocks_task(cluster: Cluster) -> None:
    task, state = run_task(cluster.database_url, "e2e_failures")
    assert state == "blocked_by_failures"
    steps = steps_of(cluster.database_url, task)
    assert steps["fail_first"]["current_state"] == "error"
    assert steps["fail_first"]["attempts"] == 1
    assert steps["fail_after"]["current_state"] == "pending"  # nothing downstream ran
    assert steps["fail_first"]["results"]["error"]["message"] == "card declined"


def test_attempts_exhausted_ends_in_error_with_dlq_entry(cluster: Cluster) -> None:
    task, state = run_task(cluster.database_url, "e2e_exhausted")
    assert state == "error"
    steps = steps_of(cluster.database_url, task)
    assert steps["exh_call"]["attempts"] == 3
    assert steps["exh_after"]["current_state"] == "pending"
    with psycopg.connect(cluster.database_url, row_factory=dict_row) as conn:
        dlq = conn.execute("SELECT dlq_reason::text AS r FROM tasker.tasks_dlq WHERE task_uuid = %s",
                           (task,)).fetchall()
    assert [row["r"] for row in dlq] == ["max_retries_exceeded"]


def test_uncaught_exception_is_classified_with_traceback(cluster: Cluster) -> None:
    task, state = run_task(cluster.database_url, "e2e_misc")
    assert state == "blocked_by_failures"
    error = steps_of(cluster.database_url, task)["misc_raise"]["results"]["error"]
    assert error["error_type"] == "KeyError"
    assert error["retryable"] is False
    assert any("missing_field" in line for line in error["backtrace"])


def test_handler_timeout(cluster: Cluster) -> None:
    started = time.monotonic()
    task, state = run_task(cluster.database_url, "e2e_timeout")
    assert state == "error"  # retryable timeout with max_attempts 1: attempts exhausted
    assert time.monotonic() - started < 20
    error = steps_of(cluster.database_url, task)["to_sleep"]["results"]["error"]
    assert error["error_type"] == "handler_timeout"


def test_unknown_handler_is_a_permanent_failure(cluster: Cluster) -> None:
    task, state = run_task(cluster.database_url, "e2e_unknown")
    assert state == "blocked_by_failures"
    error = steps_of(cluster.database_url, task)["unk_step"]["results"]["error"]
    assert error["error_type"] == "handler_not_found"
    assert "e2e.no_such_handler" in error["message"]


def _attempt_starts(url: str, task: str, step: str) -> list[float]:
    with psycopg.connect(url, row_factory=dict_row) as conn:
        rows = conn.execute(
            "SELECT extract(epoch FROM t.created_at) AS at FROM tasker.workflow_step_transitions t"
            " JOIN tasker.workflow_steps ws ON ws.workflow_step_uuid = t.workflow_step_uuid"
            " JOIN tasker.named_steps ns ON ns.named_step_uuid = ws.named_step_uuid"
            " WHERE ws.task_uuid = %s AND ns.name = %s AND t.to_state = 'in_progress'"
            " ORDER BY t.sort_key", (task, step)).fetchall()
    return [float(r["at"]) for r in rows]


def test_retry_after_is_honoured(cluster: Cluster) -> None:
    task, state = run_task(cluster.database_url, "e2e_retry_after")
    assert state == "complete"
    starts = _attempt_starts(cluster.database_url, task, "ra_call")
    assert len(starts) == 2
    assert starts[1] - starts[0] >= 1.9  # server asked for 2 s; the base backoff is 0.05 s


def test_backoff_between_retries_is_observed(cluster: Cluster) -> None:
    task, _ = run_task(cluster.database_url, "e2e_exhausted")
    starts = _attempt_starts(cluster.database_url, task, "exh_call")
    assert len(starts) == 3
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    # exponential: base 0.05 s * 2^attempts -> 0.1 s then 0.2 s (no jitter in tests)
    assert gaps[0] >= 0.09
    assert gaps[1] >= 0.19


def test_poison_messages_are_set_aside(cluster: Cluster) -> None:
    url = cluster.database_url
    garbage = {
        "orchestration_task_requests": {"garbage": True},
        "orchestration_step_results": {"step_uuid": "not-a-uuid"},
        "orchestration_task_finalizations": {"task_uuid": 42},
        "worker_e2e_queue": {"step_uuid": "nope"},
    }
    with psycopg.connect(url, autocommit=True) as conn:
        for queue, message in garbage.items():
            conn.execute("SELECT tasker.send_v1(%s, %s)", (queue, Jsonb(message)))
    deadline = time.monotonic() + 15
    found: dict[str, str] = {}
    while time.monotonic() < deadline and len(found) < len(garbage):
        with psycopg.connect(url, row_factory=dict_row) as conn:
            found = {r["queue_name"]: r["reason"] for r in conn.execute(
                "SELECT queue_name, reason FROM tasker.poison_messages")}
        time.sleep(0.1)
    assert set(found) == set(garbage), found
    assert all(reason for reason in found.values())
    # every service keeps working
    _, state = run_task(url, "e2e_linear")
    assert state == "complete"


def test_services_answer_health_and_metrics(cluster: Cluster) -> None:
    from tasker_cli.cluster import health

    for proc in cluster.processes:
        ready = health(proc.health_port, "/health/ready")
        assert ready is not None and ready["status"] == "ready", proc.label
    import urllib.request

    port = cluster.get("results").health_port
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as resp:
        text = resp.read().decode()
    assert "tasker_messages_consumed_total" in text


def test_kill_9_worker_mid_step(module_db_url: str, tmp_path: Path) -> None:
    marker = tmp_path / "stalled"
    env = pipeline_env(TASKER_QUEUES__VISIBILITY_TIMEOUT_SECONDS="2")
    with make_cluster(module_db_url, tmp_path / "logs", env=env) as c:
        rid = submit(c.database_url, "e2e_stall", {"n": 1, "marker": str(marker)},
                     namespace="e2e")
        task = outcome(c.database_url, rid)["task_uuid"]
        deadline = time.monotonic() + 20
        while not marker.exists():
            assert time.monotonic() < deadline, "the step never started"
            time.sleep(0.05)
        c.kill("worker")  # SIGKILL in the middle of the step
        c.restart("worker")
        assert wait_task(c.database_url, task, timeout=30) == "complete"
        steps = steps_of(c.database_url, task)
        assert steps["stall_b"]["attempts"] == 2
        assert steps["stall_c"]["current_state"] == "complete"
