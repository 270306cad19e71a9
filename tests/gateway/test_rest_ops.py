"""REST routes for templates, analytics, DLQ, config, health, metrics, docs and the
cross-cutting behaviour (request ids, error envelope, CORS, draining, timeouts)."""

from __future__ import annotations

import pytest
import trio

from tasker_gateway.usecases import tasks as task_usecases
from tests.gateway.conftest import Gateway, running_gateway
from tests.gateway.helpers import create_rest, open_dlq_entry

MISSING = "00000000-0000-7000-8000-000000000000"


async def test_templates(gw: Gateway) -> None:
    async with gw.http() as http:
        listed = (await http.get("/v1/templates?namespace=examples")).json()
        assert {t["name"] for t in listed["templates"]} >= {"linear_workflow",
                                                              "diamond_workflow"}
        assert [n["name"] for n in listed["namespaces"]] == ["examples"]
        assert listed["namespaces"][0]["template_count"] == listed["total_count"] >= 2
        assert (await http.get("/v1/templates?namespace=nobody")).json()["templates"] == []
        detail = (await http.get("/v1/templates/examples/linear_workflow/1.0.0")).json()
        assert detail["steps"][1]["dependencies"] == ["linear_step_1"]
        assert detail["steps"][1]["default_max_attempts"] >= 1
        assert detail["configuration"]["namespace_name"] == "examples"
        assert (await http.get("/v1/templates/examples/nope/1.0.0")).status_code == 404
        assert (await http.get("/v1/templates/bad-ns/x/1")).status_code == 400
        assert (await http.get("/v1/templates?namespace=bad-ns")).status_code == 400


async def test_analytics(gw: Gateway) -> None:
    await create_rest(gw)
    async with gw.http() as http:
        perf = (await http.get("/v1/analytics/performance?hours=1")).json()
        assert perf["total_tasks"] == 1 and perf["active_tasks"] == 1
        assert isinstance(perf["tasks_per_hour"], int) and isinstance(perf["steps_per_hour"], int)
        bottlenecks = await http.get("/v1/analytics/bottlenecks?limit=3&min_executions=0")
        assert bottlenecks.status_code == 200
        counts = bottlenecks.json()["resource_utilization"]["system_health"]
        assert counts["total_tasks"] == 1 and counts["total_steps"] == 4
        for bad in ("performance?hours=0", "performance?hours=abc",
                    "bottlenecks?limit=0", "bottlenecks?min_executions=-1"):
            assert (await http.get(f"/v1/analytics/{bad}")).status_code == 400, bad


async def test_dlq(gw: Gateway) -> None:
    task = (await create_rest(gw))["task_uuid"]
    entry = open_dlq_entry(gw, task)
    async with gw.http() as http:
        listed = (await http.get("/v1/dlq?resolution_status=pending&limit=5")).json()
        assert [e["dlq_entry_uuid"] for e in listed] == [entry]
        assert listed[0]["resolution_status"] == "Pending" and "+" not in listed[0]["created_at"]
        assert (await http.get("/v1/dlq?resolution_status=cancelled")).json() == []
        assert len((await http.get("/v1/dlq?resolution_status=Pending")).json()) == 1
        by_task = (await http.get(f"/v1/dlq/task/{task}")).json()
        assert by_task["original_state"] == "steps_in_process"
        assert by_task["task_snapshot"]["task_uuid"] == task
        summary = (await http.get(f"/v1/tasks/{task}/summary")).json()
        assert summary["dlq"]["in_dlq"] is True
        stats = (await http.get("/v1/dlq/stats")).json()
        assert stats[0]["dlq_reason"] == "ManualDlq" and stats[0]["pending"] == 1
        queue = (await http.get("/v1/dlq/investigation-queue?limit=3")).json()
        assert queue[0]["dlq_entry_uuid"] == entry and queue[0]["priority_score"] >= 10
        stale = (await http.get("/v1/dlq/staleness")).json()
        assert stale[0]["task_uuid"] == task
        updated = await http.patch(f"/v1/dlq/entry/{entry}", json={
            "resolution_status": "ManuallyResolved", "resolution_notes": "fixed the steps",
            "resolved_by": "ops", "metadata": {"ticket": "OPS-9"}})
        assert updated.status_code == 200, updated.text
        assert updated.json()["success"] is True and updated.json()["dlq_entry_uuid"] == entry
        assert updated.json()["entry"]["resolution_status"] == "ManuallyResolved"
        assert updated.json()["entry"]["resolution_timestamp"] is not None
        notes = await http.patch(f"/v1/dlq/entry/{entry}", json={
            "resolution_status": "manually_resolved", "resolution_notes": "more"})
        assert notes.json()["entry"]["resolution_notes"] == "more"

        assert (await http.get(f"/v1/dlq/task/{MISSING}")).status_code == 404
        assert (await http.patch(f"/v1/dlq/entry/{MISSING}", json={})).status_code == 404
        for path in ("/v1/dlq?resolution_status=lost", "/v1/dlq?limit=0", "/v1/dlq?offset=-1",
                     "/v1/dlq/staleness?limit=5000", "/v1/dlq/task/xyz"):
            assert (await http.get(path)).status_code == 400, path
        bad = await http.patch(f"/v1/dlq/entry/{entry}", json={"resolution_status": "gone"})
        assert bad.status_code == 400


async def test_config_endpoint(db_url: str, gw: Gateway) -> None:
    async with gw.http() as http:
        assert (await http.get("/config")).status_code == 404
    async with running_gateway(db_url, ingestion=False, gateway={
            "config_endpoint_enabled": True,
            "auth": {"api_keys": [{"key": "k", "permissions": ["tasks:read"]}]}}) as enabled, \
            enabled.http() as http:
        body = (await http.get("/config")).json()
    assert body["config"]["database"]["url"] == "***REDACTED***"
    assert body["config"]["gateway"]["auth"]["api_keys"][0]["key"] == "***REDACTED***"
    assert "gateway.auth.api_keys[0].key" in body["redacted_fields"]
    assert body["environment"] == "test"


async def test_health_metrics_and_docs(gw: Gateway) -> None:
    async with gw.http() as http:
        assert (await http.get("/health")).json()["status"] == "healthy"
        assert (await http.get("/health/live")).json()["status"] == "alive"
        ready = await http.get("/health/ready")
        assert ready.status_code == 200 and ready.json()["ready"] is True
        assert ready.json()["checks"]["web_database"]["status"] == "healthy"
        detailed = (await http.get("/health/detailed")).json()
        assert detailed["status"] == "healthy" and detailed["backpressure"]["active"] is False
        assert detailed["checks"]["queue_depth"]["status"] == "healthy"
        assert detailed["info"]["operational_state"] == "normal"
        assert detailed["pool_utilization"][0]["pool_name"] == "database"
        assert "gateway" in detailed["details"]
        metrics = await http.get("/metrics")
        assert metrics.headers["content-type"].startswith("text/plain")
        assert "tasker_gateway_requests_total" in metrics.text
        doc = (await http.get("/api-docs/openapi.json")).json()
        assert doc["openapi"] == "3.1.0" and "/v1/tasks/{task_uuid}" in doc["paths"]
        ui = await http.get("/api-docs/ui")
        assert "swagger-ui" in ui.text and ui.headers["content-type"].startswith("text/html")

        gw.runtime.state = "draining"
        try:
            draining = await http.get("/v1/tasks")
            assert draining.status_code == 503 and draining.headers["retry-after"] == "5"
            assert (await http.get("/health/ready")).status_code == 503
            detailed_503 = await http.get("/health/detailed")
            assert detailed_503.status_code == 503
        finally:
            gw.runtime.state = "normal"


async def test_envelope_request_ids_and_cors(gw: Gateway) -> None:
    async with gw.http() as http:
        unknown = await http.get("/v2/nothing")
        assert unknown.status_code == 404
        assert unknown.json()["error"]["code"] == "not_found"
        wrong_method = await http.put("/v1/tasks")
        assert wrong_method.status_code == 405
        assert wrong_method.json()["error"]["code"] == "method_not_allowed"
        echoed = await http.get("/health", headers={"X-Request-Id": "abc-123"})
        assert echoed.headers["x-request-id"] == "abc-123"
        replaced = await http.get("/health", headers={"X-Request-Id": "bad id!"})
        assert replaced.headers["x-request-id"] != "bad id!"
        preflight = await http.options("/v1/tasks", headers={
            "Origin": "https://example.org", "Access-Control-Request-Method": "POST"})
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == "*"
        assert "x-api-key" in preflight.headers["access-control-allow-headers"]


async def test_request_timeout_and_internal_errors(db_url: str,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    async def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("unexpected")

    async def slow(*args: object, **kwargs: object) -> None:
        await trio.sleep(5)

    monkeypatch.setattr(task_usecases, "get_task", boom)
    monkeypatch.setattr(task_usecases, "list_tasks", slow)
    async with running_gateway(db_url, ingestion=False,
                               gateway={"request_timeout_seconds": 1.0}) as gw, \
            gw.http() as http:
        late = await http.get("/v1/tasks")
        assert late.status_code == 408 and late.json()["error"]["code"] == "request_timeout"
        queued = await http.post("/v1/tasks", json={"name": "linear_workflow",
                                                    "namespace": "examples"})
        assert queued.status_code == 202  # the wait is bounded below the request timeout
        broken = await http.get(f"/v1/tasks/{MISSING}")
        assert broken.status_code == 500
        assert broken.json()["error"] == {
            "code": "internal", "request_id": broken.headers["x-request-id"], "details": None,
            "message": "internal error; see the gateway logs for this request id"}
