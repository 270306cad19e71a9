"""tasker-core's e2e harness, reproduced against Tasker's REST API: every service a real
process; requests shaped as `tasker_client`'s `TaskRequest` (`create_task_request` of
tests/common/integration_test_utils.rs: a `_test_run_id` in the context, naive
`requested_at`, priority 5); the harness's health check (`GET /health` must say "healthy", on
the gateway and on the worker); its polling rules (`all_complete` and a terminal task state
= done, `blocked_by_failures` = failed); and every response parsed with strict models of
tasker-core's Rust types (tests/e2e/core_api_types.py). Workflows: those of tasker-core's
Python fixtures that Tasker's example handlers cover."""

from __future__ import annotations

import csv
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from pydantic import BaseModel

from tasker_cli.cluster import Cluster
from tests.e2e import core_api_types as core
from tests.e2e.cluster_support import TEMPLATES, cluster_env, make_cluster

pytestmark = pytest.mark.e2e

M = TypeVar("M", bound=BaseModel)
TERMINAL_TASK_STATES = ("complete", "error", "cancelled")  # is_task_state_terminal
POLL_SECONDS = 0.2  # tasker-core polls every 1-2 s; the rules are the same, only faster


@pytest.fixture(scope="module")
def cluster(module_db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    env = cluster_env(namespaces=["e2e", "dynamic"],
                      handlers=["tests.e2e.pipeline_handlers", "tests.e2e.dynamic_handlers"],
                      templates=[str(TEMPLATES / "pipeline"), str(TEMPLATES / "dynamic")])
    with make_cluster(module_db_url, tmp_path_factory.mktemp("logs"), env=env,
                      replicas={"gateway": 1}) as c:
        yield c


@dataclass(frozen=True)
class CoreClient:
    """The calls of tasker-core's `OrchestrationApiClient` that its e2e tests make."""

    http: httpx.Client

    def parse(self, model: type[M], response: httpx.Response) -> M:
        assert response.is_success, (response.status_code, response.text)
        return model.model_validate_json(response.content)  # serde_json::from_slice

    def create_task(self, request: dict[str, Any]) -> core.TaskResponse:
        return self.parse(core.TaskResponse, self.http.post("/v1/tasks", json=request))

    def get_task(self, task_uuid: str) -> core.TaskResponse:
        return self.parse(core.TaskResponse, self.http.get(f"/v1/tasks/{task_uuid}"))

    def list_task_steps(self, task_uuid: str) -> list[core.StepResponse]:
        body = self.http.get(f"/v1/tasks/{task_uuid}/workflow_steps")
        return self.parse(core.StepResponses, body).root

    def get_step(self, task_uuid: str, step_uuid: str) -> core.StepResponse:
        return self.parse(core.StepResponse,
                          self.http.get(f"/v1/tasks/{task_uuid}/workflow_steps/{step_uuid}"))

    def wait_for_task_completion(self, task_uuid: str, max_wait_seconds: float) -> None:
        deadline = time.monotonic() + max_wait_seconds
        while time.monotonic() < deadline:
            task = self.get_task(task_uuid)
            if task.execution_status == "all_complete":
                if task.status in TERMINAL_TASK_STATES:
                    return
            elif task.execution_status == "blocked_by_failures":
                raise AssertionError(f"task blocked by failures: {task.status}")
            time.sleep(POLL_SECONDS)
        raise AssertionError(f"task {task_uuid} did not complete in {max_wait_seconds}s")

    def wait_for_task_failure(self, task_uuid: str, max_wait_seconds: float) -> None:
        deadline = time.monotonic() + max_wait_seconds
        while time.monotonic() < deadline:
            task = self.get_task(task_uuid)
            if task.execution_status == "blocked_by_failures":
                return
            if task.execution_status == "all_complete":
                raise AssertionError("task completed but was expected to fail")
            time.sleep(POLL_SECONDS)
        raise AssertionError(f"task {task_uuid} did not fail in {max_wait_seconds}s")


def check_health(url: str, model: type[core.HealthResponse] | type[core.BasicHealthResponse]
                 ) -> None:
    """check_orchestration_health / check_worker_health: 2xx and status "healthy"."""
    response = httpx.get(f"{url}/health", timeout=5)
    assert response.is_success, response.text
    assert model.model_validate_json(response.content).status == "healthy"


@contextmanager
def core_client(cluster: Cluster, *, check_worker: bool = True) -> Iterator[CoreClient]:
    """The harness's health checks (gateway, and worker unless told not to), then a client
    of the gateway; every module driving the API as tasker-core's harness does uses it."""
    gateway = f"http://127.0.0.1:{cluster.get('gateway').health_port}"
    check_health(gateway, core.HealthResponse)
    if check_worker:
        check_health(f"http://127.0.0.1:{cluster.get('worker').health_port}",
                     core.BasicHealthResponse)
    with httpx.Client(base_url=gateway, timeout=30) as http:
        yield CoreClient(http)


@pytest.fixture(scope="module")
def client(cluster: Cluster) -> Iterator[CoreClient]:
    with core_client(cluster) as c:
        yield c


def naive_now() -> str:
    """`chrono::Utc::now().naive_utc()` as serde writes it (nanoseconds, no offset)."""
    return datetime.now(UTC).replace(tzinfo=None).strftime("%Y-%m-%dT%H:%M:%S.%f") + "123"


def create_task_request(namespace: str, name: str, context: dict[str, Any]) -> dict[str, Any]:
    """The JSON of tasker-core's `create_task_request` (every field serde writes)."""
    return {
        "name": name, "namespace": namespace, "version": "1.0.0",
        "context": {**context, "_test_run_id": str(uuid.uuid4())},
        "initiator": "integration-test", "source_system": "test",
        "reason": "Integration test execution", "tags": ["integration-test"],
        "requested_at": naive_now(), "options": None, "priority": 5,
        "correlation_id": str(uuid.uuid4()), "parent_correlation_id": None,
    }


def run_to_completion(client: CoreClient, namespace: str, name: str, context: dict[str, Any],
                      seconds: float = 30) -> dict[str, core.StepResponse]:
    created = client.create_task(create_task_request(namespace, name, context))
    client.wait_for_task_completion(created.task_uuid, seconds)
    task = client.get_task(created.task_uuid)
    assert task.execution_status == "all_complete" and task.status == "complete"
    steps = client.list_task_steps(created.task_uuid)
    assert all(s.current_state.upper() == "COMPLETE" for s in steps), steps
    assert len(steps) == len(task.steps) == task.total_steps == task.completed_steps
    return {s.name: s for s in steps}


def value(step: core.StepResponse) -> Any:
    assert isinstance(step.results, dict)
    return step.results["result"]


def test_linear_workflow(client: CoreClient) -> None:
    steps = run_to_completion(client, "e2e", "e2e_linear", {"n": 6})
    assert [value(steps[f"lin_{c}"])["value"] for c in "abcd"] == [7, 8, 9, 10]
    first = steps["lin_a"]
    again = client.get_step(first.task_uuid, first.step_uuid)
    assert again.completed_at is not None and again.completed_at.endswith("Z")
    assert again.attempts == 1 and again.total_parents == 0


def test_diamond_workflow(client: CoreClient) -> None:
    steps = run_to_completion(client, "e2e", "e2e_diamond", {"n": 1})
    assert value(steps["dia_d"])["value"] == (2 + 10) + (2 + 100) + 1
    assert steps["dia_d"].total_parents == steps["dia_d"].completed_parents == 2


def test_tree_workflow(client: CoreClient) -> None:
    steps = run_to_completion(client, "e2e", "e2e_tree", {"n": 1})
    assert len(steps) == 8 and value(steps["tree_join"])["value"] == 4 * 4 + 1


@pytest.mark.parametrize(("amount", "branches"), [
    (500, ["auto_approve"]), (2500, ["manager_approval"]),
    (25000, ["finance_review", "manager_approval"])])
def test_conditional_approval(client: CoreClient, amount: int, branches: list[str]) -> None:
    steps = run_to_completion(client, "dynamic", "approval_routing", {"amount": amount})
    assert set(steps) == {"validate_request", "routing_decision", "finalize_approval",
                          *branches}
    assert value(steps["finalize_approval"])["branches"] == branches


def test_ecommerce_order_with_nested_decisions(client: CoreClient) -> None:
    steps = run_to_completion(client, "dynamic", "order_shipping",
                              {"order_id": "ORD-1", "priority": "expedited", "carrier": "air"})
    assert value(steps["notify_customer"]) == {"confirmed": ["air"]}


def test_permanent_failure_blocks_without_retries(client: CoreClient) -> None:
    created = client.create_task(create_task_request(
        "e2e", "e2e_failures", {"n": 1, "error_message": "Permanent failure"}))
    client.wait_for_task_failure(created.task_uuid, 30)
    task = client.get_task(created.task_uuid)
    assert "blocked" in task.execution_status and task.failed_steps == 1
    steps = {s.name: s for s in client.list_task_steps(created.task_uuid)}
    failed = steps["fail_first"]
    assert failed.current_state.upper() == "ERROR" and failed.attempts == 1
    assert failed.last_failure_at is not None and not failed.retry_eligible
    readiness = {s.name: s for s in task.steps}["fail_first"]
    assert readiness.last_failure_at is not None and readiness.last_failure_at.tzinfo is None
    assert steps["fail_after"].current_state == "pending"


def test_retryable_failure_exhausts_its_retries(client: CoreClient) -> None:
    created = client.create_task(create_task_request("e2e", "e2e_exhausted", {"n": 1}))
    client.wait_for_task_failure(created.task_uuid, 30)
    steps = {s.name: s for s in client.list_task_steps(created.task_uuid)}
    assert steps["exh_call"].current_state.upper() == "ERROR"
    assert steps["exh_call"].attempts == steps["exh_call"].max_attempts == 3
    audit = client.parse(core.StepAuditResponses, client.http.get(
        f"/v1/tasks/{created.task_uuid}/workflow_steps/{steps['exh_call'].step_uuid}/audit"))
    assert [a.success for a in audit.root] == [False, False, False]


def write_csv(path: Path, rows: int) -> int:
    total = 0
    with path.open("w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["id", "sku", "quantity", "price_cents"])
        for i in range(rows):
            out.writerow([i + 1, f"SKU-{i + 1:05d}", i % 7 + 1, 100 + i])
            total += i % 7 + 1
    return total


def test_csv_batch_of_1000_rows_in_5_workers(client: CoreClient, tmp_path: Path) -> None:
    path = tmp_path / "products.csv"
    quantity = write_csv(path, 1000)
    steps = run_to_completion(client, "dynamic", "csv_continue", {"csv_file_path": str(path)},
                              seconds=60)
    workers = sorted(name for name in steps if name.startswith("process_csv_batch_"))
    assert len(workers) == 5
    result = value(steps["aggregate_csv_results"])
    assert (result["rows"], result["quantity"], result["worker_count"]) == (1000, quantity, 5)


def test_csv_batch_of_an_empty_file(client: CoreClient, tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    write_csv(path, 0)
    steps = run_to_completion(client, "dynamic", "csv_continue", {"csv_file_path": str(path)})
    assert value(steps["aggregate_csv_results"])["rows"] == 0


def test_other_routes_parse_as_tasker_core_types(client: CoreClient) -> None:
    """The reads tasker-core's client and ctl make besides the workflow ones."""
    steps = run_to_completion(client, "e2e", "e2e_linear", {"n": 2})
    task = steps["lin_a"].task_uuid
    listed = client.parse(core.TaskListResponse, client.http.get(
        "/v1/tasks", params={"page": 1, "per_page": 25, "namespace": "e2e"}))
    assert task in {t.task_uuid for t in listed.tasks} and listed.pagination.page == 1
    summary = client.parse(core.TaskSummaryResponse, client.http.get(f"/v1/tasks/{task}/summary"))
    assert [s.name for s in summary.template.steps] == ["lin_a", "lin_b", "lin_c", "lin_d"]
    assert summary.task.execution_status == "all_complete" and not summary.dlq.in_dlq
    templates = client.parse(core.TemplateListResponse,
                             client.http.get("/v1/templates", params={"namespace": "e2e"}))
    assert templates.total_count == len(templates.templates) >= 3
    detail = client.parse(core.TemplateDetail,
                          client.http.get("/v1/templates/e2e/e2e_exhausted/1.0.0"))
    assert detail.steps[0].default_max_attempts == 3
    client.parse(core.PerformanceMetrics,
                 client.http.get("/v1/analytics/performance", params={"hours": 1}))
    client.parse(core.DlqEntries, client.http.get("/v1/dlq", params={
        "resolution_status": "pending", "limit": 50, "offset": 0}))
    for path in ("/health/live", "/health/ready"):  # liveness_probe / readiness_probe
        client.parse(core.HealthResponse, client.http.get(path))


def test_duplicate_identity_names_the_existing_task(client: CoreClient) -> None:
    request = create_task_request("e2e", "e2e_linear", {"n": 3})
    first = client.create_task(request)
    again = client.http.post("/v1/tasks", json={**request, "correlation_id": str(uuid.uuid4())})
    assert again.status_code == 409  # STRICT: same template, same context
    assert again.json()["error"]["details"]["existing_task_uuid"] == first.task_uuid
    assert again.headers["location"] == f"/v1/tasks/{first.task_uuid}"
    keyed = {**request, "idempotency_key": f"job-{uuid.uuid4()}"}  # the key overrides STRICT
    second = client.create_task(keyed)
    assert second.task_uuid != first.task_uuid
    assert client.http.post("/v1/tasks", json=keyed).status_code == 409
