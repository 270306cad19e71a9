"""Operations through the API edge: a stuck task found by the finalizer's staleness detector
is investigated and resolved over REST; `tasker analytics` reads the gateway over gRPC."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, redirect_stderr, redirect_stdout
from typing import Any

import pytest
import trio

from tasker_cli.main import main as tasker_main
from tasker_finalizer.service import serve as serve_finalizer
from tests.gateway.conftest import Gateway, gateway_settings, running_gateway
from tests.gateway.helpers import create_rest, linear_body, wait_state


@asynccontextmanager
async def gateway_with_detector(db_url: str) -> AsyncIterator[Gateway]:
    settings = gateway_settings(db_url, staleness={"detection_interval_seconds": 0.05})
    # ingestion and the gateway, no worker; the finalizer runs the detector
    async with running_gateway(db_url, settings=settings) as gw, trio.open_nursery() as nursery:
        await nursery.start(serve_finalizer, settings)
        yield gw
        nursery.cancel_scope.cancel()


async def test_dlq_life_cycle_through_the_api(db_url: str) -> None:
    async with gateway_with_detector(db_url) as gw:
        created = await create_rest(gw, linear_body(6))
        task = created["task_uuid"]
        await wait_state(gw, task, "steps_in_process")  # no worker: it stays there
        async with gw.http() as http:
            stale = (await http.get("/v1/dlq/staleness?limit=10")).json()
            assert [(e["task_uuid"], e["health_status"]) for e in stale] == [(task, "healthy")]
            # 31 minutes pass (the transition is backdated); the detector acts.
            gw.sql("UPDATE tasker.task_transitions SET created_at = now() - interval '31 min'"
                   " WHERE task_uuid = %s AND most_recent", (task,))
            assert await wait_state(gw, task, "error") == "error"

            queue = (await http.get("/v1/dlq/investigation-queue?limit=10")).json()
            assert [(q["task_uuid"], q["dlq_reason"]) for q in queue] == [
                (task, "StalenessTimeout")]
            entry = (await http.get(f"/v1/dlq/task/{task}")).json()
            assert entry["resolution_status"] == "Pending"
            assert entry["original_state"] == "steps_in_process"
            assert entry["task_snapshot"]["threshold_minutes"] == 30
            assert entry["metadata"]["detection_method"] == "automatic_staleness"
            stats = (await http.get("/v1/dlq/stats")).json()
            assert [(s["dlq_reason"], s["pending"]) for s in stats] == [
                ("StalenessTimeout", 1)]

            resolved = await http.patch(f"/v1/dlq/entry/{entry['dlq_entry_uuid']}", json={
                "resolution_status": "manually_resolved", "resolved_by": "oncall@example.com",
                "resolution_notes": "worker pool was scaled to zero; restarted",
                "metadata": {"ticket": "OPS-42"}})
            assert resolved.status_code == 200, resolved.text
            body = resolved.json()["entry"]
            assert body["resolution_status"] == "ManuallyResolved"
            assert body["resolved_by"] == "oncall@example.com"
            assert body["resolution_notes"].startswith("worker pool")
            assert body["resolution_timestamp"] is not None
            assert body["metadata"]["ticket"] == "OPS-42"
            assert (await http.get("/v1/dlq/investigation-queue")).json() == []
            stats = (await http.get("/v1/dlq/stats")).json()
            assert [(s["pending"], s["manually_resolved"]) for s in stats] == [(0, 1)]
            listed = (await http.get("/v1/dlq?resolution_status=manually_resolved")).json()
            assert [e["task_uuid"] for e in listed] == [task]


def _cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = tasker_main(argv)
    return code, out.getvalue(), err.getvalue()


async def _tasker(*argv: str) -> tuple[int, str, str]:
    return await trio.to_thread.run_sync(_cli, list(argv))


async def test_tasker_analytics_command(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "250")
    for name in ("TASKER_GATEWAY_ADDRESS", "TASKER_AUTH_TOKEN", "TASKER_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    async with running_gateway(db_url, pipeline=True) as gw:
        created = await create_rest(gw, linear_body(2))
        assert await wait_state(gw, created["task_uuid"], "complete") == "complete"
        addr = ["--address", f"127.0.0.1:{gw.grpc_port}"]
        code, out, err = await _tasker("analytics", "performance", "--hours", "1", "--json",
                                       *addr)
        assert code == 0, err
        perf: dict[str, Any] = json.loads(out)
        assert int(perf["total_tasks"]) == 1 and int(perf["completed_tasks"]) == 1
        assert perf["completion_rate"] == 100.0
        code, out, err = await _tasker("analytics", "performance", *addr)
        assert code == 0, err
        assert "completion rate" in out and "100.00%" in out
        code, out, err = await _tasker("analytics", "bottlenecks", "--min-executions", "1",
                                       "--json", *addr)
        assert code == 0, err
        analysis = json.loads(out)
        assert {s["step_name"] for s in analysis["slow_steps"]} == {
            f"linear_step_{i}" for i in range(1, 5)}
        code, out, err = await _tasker("analytics", "bottlenecks", "--limit", "2",
                                       "--min-executions", "1", *addr)
        assert code == 0, err
        assert "slowest steps" in out and "recommendations" in out
        assert "linear_workflow" in out and "tasks complete" in out
        code, _, err = await _tasker("analytics", "performance", "--address",
                                     "127.0.0.1:1", "--timeout", "1")
        assert code == 1 and err.startswith("error:")
    with pytest.raises(SystemExit):
        _cli(["analytics", "performance", "--hours", "0"])


def test_rendering_an_empty_analysis() -> None:
    from rich.console import Console

    from tasker_cli.commands.analytics import bottleneck_view
    from tasker_shared.contracts.generated.tasker import v1 as pb

    console = Console(width=200, record=True)
    console.print(bottleneck_view(pb.BottleneckAnalysis()))
    text = console.export_text()
    assert "none: nothing stands out" in text
    with pytest.raises(SystemExit):
        _cli(["analytics", "bottlenecks", "--limit", "ten"])
