"""Batch processing end to end (SPEC §5.2): a 1,000-row CSV split into 5 cursor ranges and
aggregated, no_batches, each failure strategy, and kill -9 of a worker mid-range with
checkpoints (resume from the checkpoint, exact totals, a reported checkpoint stall)."""

from __future__ import annotations

import csv
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from tasker_cli.cluster import Cluster, health
from tests.e2e.cluster_support import TEMPLATES, cluster_env, make_cluster
from tests.support import outcome, steps_of, submit, wait_task

pytestmark = pytest.mark.e2e

HANDLERS = "tests.e2e.dynamic_handlers"
WORKERS = [f"process_csv_batch_00{i}" for i in range(1, 6)]


def write_csv(path: Path, rows: int) -> list[tuple[int, int]]:
    """A CSV of `rows` products; returns (quantity, price_cents) per row."""
    data = [((i * 7) % 50 + 1, 100 + (i * 13) % 900) for i in range(rows)]
    with path.open("w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle)
        out.writerow(["id", "sku", "quantity", "price_cents"])
        for i, (quantity, price) in enumerate(data):
            out.writerow([i + 1, f"SKU-{i + 1:05d}", quantity, price])
    return data


def totals(data: list[tuple[int, int]], skip: range = range(0)) -> dict[str, int]:
    kept = [row for i, row in enumerate(data) if i not in skip]
    return {"rows": len(kept), "quantity": sum(q for q, _ in kept),
            "value_cents": sum(q * p for q, p in kept)}


@pytest.fixture(scope="module")
def cluster(module_db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    env = cluster_env(namespaces=["dynamic"], handlers=[HANDLERS],
                      templates=[str(TEMPLATES / "dynamic")],
                      TASKER_QUEUES__VISIBILITY_TIMEOUT_SECONDS="2",
                      TASKER_BATCHES__CHECKPOINT_STALL_MINUTES="0.02",
                      TASKER_BATCHES__STALL_CHECK_INTERVAL_SECONDS="0.3")
    with make_cluster(module_db_url, tmp_path_factory.mktemp("logs"), env=env) as c:
        yield c


@pytest.fixture(scope="module")
def csv_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[tuple[int, int]]]:
    path = tmp_path_factory.mktemp("csv") / "products.csv"
    return path, write_csv(path, 1000)


def start(url: str, name: str, context: dict[str, Any]) -> str:
    rid = submit(url, name, {**context, "nonce": uuid.uuid4().hex}, namespace="dynamic")
    out = outcome(url, rid)
    assert out["outcome"] == "created", out
    return str(out["task_uuid"])


def edge_names(url: str, task: str) -> dict[tuple[str, str], str]:
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT fn.name, tn.name, e.name FROM tasker.workflow_step_edges e"
            " JOIN tasker.workflow_steps f ON f.workflow_step_uuid = e.from_step_uuid"
            " JOIN tasker.named_steps fn ON fn.named_step_uuid = f.named_step_uuid"
            " JOIN tasker.workflow_steps t ON t.workflow_step_uuid = e.to_step_uuid"
            " JOIN tasker.named_steps tn ON tn.named_step_uuid = t.named_step_uuid"
            " WHERE t.task_uuid = %s", (task,)).fetchall()
    return {(str(a), str(b)): str(c) for a, b, c in rows}


def aggregate_of(steps: dict[str, dict[str, Any]]) -> dict[str, Any]:
    row = steps["aggregate_csv_results"]
    assert row["current_state"] == "complete", row["current_state"]
    result: dict[str, Any] = row["results"]["result"]
    return result


def test_csv_in_five_batches_gives_the_exact_total(
        cluster: Cluster, csv_file: tuple[Path, list[tuple[int, int]]]) -> None:
    url = cluster.database_url
    path, data = csv_file
    task = start(url, "csv_continue", {"csv_file_path": str(path)})
    assert wait_task(url, task) == "complete"
    steps = steps_of(url, task)
    assert set(steps) == {"analyze_csv", *WORKERS, "aggregate_csv_results"}
    assert all(row["current_state"] == "complete" and row["attempts"] == 1
               for row in steps.values())
    result = aggregate_of(steps)
    assert {k: result[k] for k in ("rows", "quantity", "value_cents")} == totals(data)
    assert result["worker_count"] == 5
    assert result["failed_batches"] == []
    assert result["overlapping_rows"] == 0
    assert result["segments"] == [[i * 200, (i + 1) * 200] for i in range(5)]
    inputs = steps["process_csv_batch_002"]["inputs"]
    assert inputs["cursor"] == {"batch_id": "002", "start_cursor": 200, "end_cursor": 400,
                                "batch_size": 200}
    assert inputs["batch_metadata"]["cursor_field"] == "row_number"
    assert inputs["batch_metadata"]["failure_strategy"] == "continue_on_failure"
    assert inputs["is_no_op"] is False
    edges = edge_names(url, task)
    assert edges == {
        **{("analyze_csv", w): "batch_dependency" for w in WORKERS},
        **{(w, "aggregate_csv_results"): "worker_to_convergence" for w in WORKERS},
    }


def test_no_batches_runs_the_placeholder_and_convergence(cluster: Cluster,
                                                         tmp_path: Path) -> None:
    url = cluster.database_url
    empty = tmp_path / "empty.csv"
    write_csv(empty, 0)
    task = start(url, "csv_continue", {"csv_file_path": str(empty)})
    assert wait_task(url, task) == "complete"
    steps = steps_of(url, task)
    assert set(steps) == {"analyze_csv", "process_csv_batch_000", "aggregate_csv_results"}
    placeholder = steps["process_csv_batch_000"]
    assert placeholder["inputs"]["is_no_op"] is True
    assert placeholder["inputs"]["cursor"] == {"batch_id": "000", "start_cursor": 0,
                                               "end_cursor": 0, "batch_size": 0}
    assert placeholder["results"]["result"]["no_op"] is True
    assert aggregate_of(steps) == {"no_batches": True, "rows": 0, "quantity": 0,
                                   "value_cents": 0, "worker_count": 0}


@pytest.mark.parametrize(("context", "message"), [
    ({"worker_template_name": "process_rows"}, "worker template 'process_rows' is not a step"),
    ({"worker_template_name": "aggregate_csv_results"}, "not a batch_worker"),
    ({"batch_size": 10}, "asked for 100 batches; the limit is 50"),
])
def test_invalid_batch_outcome_fails_the_batchable_step(
        cluster: Cluster, csv_file: tuple[Path, list[tuple[int, int]]],
        context: dict[str, Any], message: str) -> None:
    url = cluster.database_url
    path, _ = csv_file
    task = start(url, "csv_continue", {"csv_file_path": str(path), **context})
    assert wait_task(url, task) == "blocked_by_failures"
    steps = steps_of(url, task)
    assert set(steps) == {"analyze_csv"}  # nothing half-created
    analyser = steps["analyze_csv"]
    assert analyser["current_state"] == "error"
    assert analyser["attempts"] == 1
    assert message in analyser["results"]["error"]["message"]
    assert "analyze_csv" in analyser["results"]["error"]["message"]


def test_continue_on_failure_lets_convergence_see_the_failure(
        cluster: Cluster, csv_file: tuple[Path, list[tuple[int, int]]]) -> None:
    url = cluster.database_url
    path, data = csv_file
    task = start(url, "csv_continue", {"csv_file_path": str(path), "fail_batches": ["002"]})
    assert wait_task(url, task) == "complete"
    steps = steps_of(url, task)
    failed = steps["process_csv_batch_002"]
    assert failed["current_state"] == "complete"
    assert failed["results"]["success"] is False
    assert "batch 002" in failed["results"]["error"]["message"]
    result = aggregate_of(steps)
    assert result["failed_batches"] == ["process_csv_batch_002"]
    assert result["worker_count"] == 5
    assert {k: result[k] for k in ("rows", "quantity", "value_cents")} == totals(
        data, skip=range(200, 400))


def test_fail_fast_blocks_at_the_first_failure_and_skips_the_rest(
        cluster: Cluster, csv_file: tuple[Path, list[tuple[int, int]]]) -> None:
    url = cluster.database_url
    path, _ = csv_file
    # the healthy workers take ~400 ms and checkpoint every 50 rows; 003 fails at once
    task = start(url, "csv_fail_fast", {"csv_file_path": str(path), "fail_batches": ["003"],
                                        "row_delay_ms": 2, "checkpoint_every": 50})
    assert wait_task(url, task) == "blocked_by_failures"
    steps = steps_of(url, task)
    assert steps["process_csv_batch_003"]["current_state"] == "error"
    assert steps["process_csv_batch_003"]["attempts"] == 1
    others = [w for w in WORKERS if w != "process_csv_batch_003"]
    assert {w: steps[w]["current_state"] for w in others} == dict.fromkeys(others, "cancelled")
    convergence = steps["aggregate_csv_results"]
    assert convergence["current_state"] == "pending"
    assert convergence["results"] is None
    # the cancelled workers stopped at their next checkpoint instead of running to the end
    time.sleep(1.0)
    with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
        rows = conn.execute(
            "SELECT ns.name, ws.checkpoint, ws.results FROM tasker.workflow_steps ws"
            " JOIN tasker.named_steps ns ON ns.named_step_uuid = ws.named_step_uuid"
            " WHERE ws.task_uuid = %s AND ns.name = ANY (%s)", (task, others)).fetchall()
    for row in rows:
        assert row["results"] is None, row["name"]
        assert row["checkpoint"] is None or row["checkpoint"]["items_processed"] < 200
    assert wait_task(url, task) == "blocked_by_failures"


def test_isolate_blocks_for_an_operator(
        cluster: Cluster, csv_file: tuple[Path, list[tuple[int, int]]]) -> None:
    url = cluster.database_url
    path, data = csv_file
    task = start(url, "csv_isolate", {"csv_file_path": str(path), "fail_batches": ["003"]})
    assert wait_task(url, task) == "blocked_by_failures"
    steps = steps_of(url, task)
    assert steps["process_csv_batch_003"]["current_state"] == "error"
    others = [w for w in WORKERS if w != "process_csv_batch_003"]
    assert all(steps[w]["current_state"] == "complete" for w in others)
    assert steps["aggregate_csv_results"]["current_state"] == "pending"
    # an operator resolves the failed batch by hand; convergence then runs and sees it
    with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
        step = conn.execute(
            "SELECT ws.workflow_step_uuid FROM tasker.workflow_steps ws"
            " JOIN tasker.named_steps ns ON ns.named_step_uuid = ws.named_step_uuid"
            " WHERE ws.task_uuid = %s AND ns.name = 'process_csv_batch_003'", (task,)).fetchone()
        assert step is not None
        conn.execute("SELECT * FROM tasker.resolve_step_v1(%s, %s, 'resolve_manually', NULL,"
                     " %s)", (task, step["workflow_step_uuid"], Jsonb({"actor": "e2e"})))
    assert wait_task(url, task, states={"complete"}) == "complete"
    result = aggregate_of(steps_of(url, task))
    assert result["failed_batches"] == ["process_csv_batch_003"]
    assert {k: result[k] for k in ("rows", "quantity", "value_cents")} == totals(
        data, skip=range(400, 600))


def _stalled_steps(cluster: Cluster) -> list[str]:
    detail = health(cluster.get("finalizer").health_port, "/health/detailed")
    if detail is None:
        return []
    return [s["step_name"] for s in detail["details"]["checkpoint_stalls"]["stalled"]]


def test_kill_9_mid_range_resumes_from_the_checkpoint(
        cluster: Cluster, csv_file: tuple[Path, list[tuple[int, int]]], tmp_path: Path) -> None:
    url = cluster.database_url
    path, data = csv_file
    task = start(url, "csv_continue", {
        "csv_file_path": str(path), "checkpoint_every": 50,
        "pause": {"batch_id": "002", "at_row": 320, "marker_dir": str(tmp_path)}})
    marker = tmp_path / "paused"
    deadline = time.monotonic() + 20
    while not marker.exists():
        assert time.monotonic() < deadline, "batch 002 never reached row 320"
        time.sleep(0.02)
    # the paused worker makes no progress: the finalizer reports the checkpoint stall
    while "process_csv_batch_002" not in _stalled_steps(cluster):
        assert time.monotonic() < deadline, "the checkpoint stall was not reported"
        time.sleep(0.1)
    cluster.kill("worker")  # SIGKILL in the middle of rows 300..399
    cluster.restart("worker")
    assert wait_task(url, task, timeout=30) == "complete"
    steps = steps_of(url, task)
    batch = steps["process_csv_batch_002"]
    assert batch["attempts"] == 2
    assert batch["results"]["result"]["resumes"] == [{"attempt": 2, "cursor": 300}]
    with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
        saved = conn.execute(
            "SELECT ws.checkpoint FROM tasker.workflow_steps ws"
            " JOIN tasker.named_steps ns ON ns.named_step_uuid = ws.named_step_uuid"
            " WHERE ws.task_uuid = %s AND ns.name = 'process_csv_batch_002'", (task,)).fetchone()
    assert saved is not None
    assert [h["cursor"] for h in saved["checkpoint"]["history"]] == [250, 300, 350]
    result = aggregate_of(steps)
    assert {k: result[k] for k in ("rows", "quantity", "value_cents")} == totals(data)
    assert result["overlapping_rows"] == 0  # no row counted twice
    assert result["failed_batches"] == []
