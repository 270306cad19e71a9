"""Real processes (gateway, ingestion, results, finalizer, worker): every line each one
writes is a JSON object; the gateway writes one access line per REST and gRPC call (method,
route, status, duration, principal); every service's health bodies share one shape."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from tasker_client.sync_client import SyncTaskerClient
from tasker_worker.examples import templates_dir
from tests.e2e.cluster_support import cluster_env, make_cluster
from tests.support import EXAMPLES

pytestmark = pytest.mark.e2e

LINEAR = {"name": "linear_workflow", "namespace": "examples", "version": "1.0.0"}


def _lines(path: Path) -> list[dict[str, Any]]:
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            raise AssertionError(f"{path.name}: not a JSON line: {line[:300]!r}") from None
        assert isinstance(record, dict), line
        records.append(record)
    return records


def test_json_logs_access_lines_and_one_health_shape(db_url: str, tmp_path: Path) -> None:
    env = cluster_env(namespaces=["examples"], handlers=[EXAMPLES],
                      templates=[str(templates_dir())])
    logs = tmp_path / "logs"
    with make_cluster(db_url, logs, env=env, replicas={"gateway": 1}) as cluster:
        gateway = cluster.get("gateway")
        rest = f"http://127.0.0.1:{gateway.health_port}"
        with httpx.Client(base_url=rest, timeout=30) as http:
            made = http.post("/v1/tasks", json={**LINEAR, "context": {"even_number": 2}})
            assert made.status_code == 201, made.text
            assert http.get("/v1/tasks/not-a-uuid").status_code == 400
            bodies = {"gateway": {path: http.get(path).json()
                                  for path in ("/health", "/health/live", "/health/ready")}}
        grpc_port = gateway.env["TASKER_GATEWAY__GRPC_PORT"]
        with SyncTaskerClient(f"127.0.0.1:{grpc_port}") as client:
            assert client.get_task(made.json()["task_uuid"]).name == "linear_workflow"
        for name in ("ingestion", "worker"):
            port = cluster.get(name).health_port
            bodies[name] = {path: httpx.get(f"http://127.0.0.1:{port}{path}", timeout=10).json()
                            for path in ("/health", "/health/live", "/health/ready")}
    for path in ("/health", "/health/live"):
        shapes = {name: set(found[path]) for name, found in bodies.items()}
        assert len({frozenset(s) for s in shapes.values()}) == 1, (path, shapes)
        assert shapes["gateway"] >= {"status", "timestamp", "worker_id", "service"}
    for name, found in bodies.items():
        ready = found["/health/ready"]
        assert {"status", "timestamp", "worker_id", "service", "ready", "checks"} <= set(ready)
        assert ready["service"] == name and ready["worker_id"], ready
        for check in ready["checks"].values():
            assert set(check) == {"status", "message", "duration_ms"}, (name, check)

    by_service = {path.stem: _lines(path) for path in sorted(logs.glob("*.log"))}
    assert set(by_service) >= {"gateway-0", "ingestion-0", "worker-0", "results-0"}
    access = [r for r in by_service["gateway-0"] if r.get("event") == "request"]
    for line in access:
        assert {"transport", "method", "route", "status", "duration_ms", "principal",
                "request_id", "timestamp", "level"} <= set(line), line
    rest_create = [r for r in access if r["transport"] == "rest" and r["method"] == "POST"
                   and r["route"] == "/v1/tasks"]
    assert [r["status"] for r in rest_create] == ["201"]
    assert rest_create[0]["principal"] == "anonymous" and rest_create[0]["duration_ms"] > 0
    bad = [r for r in access if r["route"] == "/v1/tasks/<task_uuid>" and r["method"] == "GET"]
    assert [r["status"] for r in bad] == ["400"]
    grpc_get = [r for r in access if r["transport"] == "grpc"
                and r["route"] == "/tasker.v1.TaskService/GetTask"]
    assert [r["status"] for r in grpc_get] == ["OK"] and grpc_get[0]["principal"] == "anonymous"
    health_lines = [r for r in access if r["route"] == "/health/ready"]
    assert health_lines and all(r["principal"] is None for r in health_lines)
