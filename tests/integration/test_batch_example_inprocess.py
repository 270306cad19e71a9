"""The sample CSV batch workflow (tasker_worker.examples.batch_csv) through the whole
pipeline in one Trio run: fan-out, checkpoints, aggregation, and the empty-file case."""

from __future__ import annotations

import csv
from pathlib import Path

import psycopg
import trio

from tests.support import outcome, steps_of, submit, wait_task


def write_csv(path: Path, rows: int) -> int:
    total = 0
    with path.open("w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle)
        out.writerow(["id", "quantity", "price_cents"])
        for i in range(rows):
            total += (i % 9 + 1) * (i % 5 + 100)
            out.writerow([i, i % 9 + 1, i % 5 + 100])
    return total


async def run_csv(url: str, path: Path) -> str:
    rid = submit(url, "csv_batch", {"csv_file_path": str(path)})
    out = await trio.to_thread.run_sync(outcome, url, rid)
    assert out["outcome"] == "created", out
    assert await trio.to_thread.run_sync(wait_task, url, out["task_uuid"]) == "complete"
    return str(out["task_uuid"])


async def test_csv_batches_with_checkpoints(pipeline: str, tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    expected = write_csv(path, 450)
    task = await run_csv(pipeline, path)
    steps = steps_of(pipeline, task)
    workers = sorted(name for name in steps if name.startswith("process_csv_batch_"))
    assert workers == ["process_csv_batch_001", "process_csv_batch_002", "process_csv_batch_003"]
    result = steps["aggregate_csv_results"]["results"]["result"]
    assert result["rows"] == 450
    assert result["value_cents"] == expected
    assert result["batches"] == 3
    # 200-row batches checkpoint once, after 100 rows; the 50-row one never does
    with psycopg.connect(pipeline, autocommit=True) as conn:
        saved = dict(conn.execute(
            "SELECT ns.name, ws.checkpoint FROM tasker.workflow_steps ws"
            " JOIN tasker.named_steps ns ON ns.named_step_uuid = ws.named_step_uuid"
            " WHERE ws.task_uuid = %s AND ns.name LIKE 'process_csv_batch_%%'", (task,)))
    assert [h["cursor"] for h in saved["process_csv_batch_001"]["history"]] == [100]
    assert [h["cursor"] for h in saved["process_csv_batch_002"]["history"]] == [300]
    assert saved["process_csv_batch_003"] is None


async def test_csv_without_rows(pipeline: str, tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    write_csv(path, 0)
    task = await run_csv(pipeline, path)
    steps = steps_of(pipeline, task)
    assert set(steps) == {"analyze_csv", "process_csv_batch_000", "aggregate_csv_results"}
    result = steps["aggregate_csv_results"]["results"]["result"]
    assert result["no_batches"] is True
    assert result["rows"] == 0
