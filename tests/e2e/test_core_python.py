"""tasker-core's Python e2e scenarios (tests/e2e/python/*.rs) that test_core_rest.py does not
run, through the same harness (tasker-core's request shape, health checks, polling rules
and strict response types): the analytics data pipeline, the microservices user
registration, checkpoint yields (happy path, frequent, single batch, zero items, transient
failure resumed from the checkpoint, permanent failure) and the resolver tests (method
dispatch, and a template without method/resolver). Templates are written in tasker-core's
format (tests/e2e/templates/core_python), handlers for Tasker's SDK (core_*_handlers.py)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from tasker_cli.cluster import Cluster
from tests.e2e import core_api_types as core
from tests.e2e.cluster_support import TEMPLATES, cluster_env, make_cluster
from tests.e2e.test_core_rest import (
    POLL_SECONDS,
    TERMINAL_TASK_STATES,
    CoreClient,
    core_client,
    create_task_request,
)

pytestmark = pytest.mark.e2e

CHECKPOINT_NS, CHECKPOINT_TASK = "python_e2e_checkpoint_yield", "checkpoint_yield_test"


@pytest.fixture(scope="module")
def cluster(module_db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    env = cluster_env(
        namespaces=["data_pipeline_py", "microservices_py", CHECKPOINT_NS, "resolver_tests_py",
                    "linear_workflow_py"],
        handlers=["tests.e2e.core_blog_handlers", "tests.e2e.core_checkpoint_handlers",
                  "tests.e2e.core_resolver_handlers"],
        templates=[str(TEMPLATES / "core_python")])
    with make_cluster(module_db_url, tmp_path_factory.mktemp("logs"), env=env,
                      replicas={"gateway": 1}) as c:
        yield c


@pytest.fixture(scope="module")
def client(cluster: Cluster) -> Iterator[CoreClient]:
    with core_client(cluster) as c:
        yield c


def completed(client: CoreClient, namespace: str, name: str, context: dict[str, Any],
              seconds: float = 30) -> dict[str, core.StepResponse]:
    """Create, wait_for_task_completion, then tasker-core's checks: execution complete,
    status complete, every step COMPLETE. The steps by name."""
    created = client.create_task(create_task_request(namespace, name, context))
    client.wait_for_task_completion(created.task_uuid, seconds)
    task = client.get_task(created.task_uuid)
    assert task.execution_status == "all_complete"  # is_execution_complete()
    assert "complete" in task.status.lower()
    steps = client.list_task_steps(created.task_uuid)
    assert all(s.current_state.upper() == "COMPLETE" for s in steps), steps
    return {s.name: s for s in steps}


def result(step: core.StepResponse) -> Any:
    assert isinstance(step.results, dict)
    return step.results["result"]


def test_successful_analytics_pipeline_py(client: CoreClient) -> None:
    steps = completed(client, "data_pipeline_py", "analytics_pipeline_py", {
        "pipeline_id": f"pipeline_{uuid.uuid4()}",
        "date_range": {"start_date": "2025-11-01", "end_date": "2025-11-30"}})
    assert set(steps) == {"extract_sales_data", "extract_inventory_data",
                          "extract_customer_data", "transform_sales", "transform_inventory",
                          "transform_customers", "aggregate_metrics", "generate_insights"}
    aggregate = steps["aggregate_metrics"]
    assert aggregate.total_parents == aggregate.completed_parents == 3  # the convergence
    metrics = result(aggregate)
    assert metrics["sources_aggregated"] == 3
    assert metrics["total_revenue"] == result(steps["transform_sales"])["total_revenue"] == 1550
    assert metrics["inventory_reorder_alerts"] == 2 and metrics["total_customers"] == 3
    assert result(steps["extract_sales_data"])["date_range"]["end_date"] == "2025-11-30"
    insights = result(steps["generate_insights"])
    assert insights["pipeline_complete"] and insights["insights_generated"] == 2


def test_successful_user_registration_py(client: CoreClient) -> None:
    email = f"test_{uuid.uuid4()}@example.com"
    steps = completed(client, "microservices_py", "user_registration_py", {"user_info": {
        "email": email, "name": "Test User", "plan": "pro", "source": "api_test"}})
    assert set(steps) == {"create_user_account", "setup_billing_profile",
                          "initialize_preferences", "send_welcome_sequence",
                          "update_user_status"}
    assert steps["send_welcome_sequence"].total_parents == 2
    user = result(steps["create_user_account"])
    assert user["email"] == email and user["status"] == "created"
    final = result(steps["update_user_status"])  # reads every ancestor's result
    assert final["status"] == "active" and final["user_id"] == user["user_id"]
    assert final["billing_id"] == result(steps["setup_billing_profile"])["billing_id"]
    assert final["services_completed"] == ["user_service", "billing_service",
                                           "preferences_service", "notification_service"]


# --- checkpoint yield (checkpoint_yield_test.rs) --------------------------------------------


def checkpoint_request(total: int, every: int, *, fail_after: int | None = None,
                       fail_on: int | None = None, permanent: bool = False
                       ) -> dict[str, Any]:
    """create_checkpoint_yield_request: optional keys only when set."""
    context: dict[str, Any] = {"total_items": total, "items_per_checkpoint": every}
    if fail_after is not None:
        context["fail_after_items"] = fail_after
    if fail_on is not None:
        context["fail_on_attempt"] = fail_on
    if permanent:
        context["permanent_failure"] = True
    return context


def batch_worker(steps: dict[str, core.StepResponse]) -> core.StepResponse:
    [worker] = [s for name, s in steps.items() if name.startswith("checkpoint_yield_batch")]
    return worker


def saved_checkpoint(url: str, step_uuid: str) -> dict[str, Any] | None:
    """workflow_steps.checkpoint as the worker persisted it."""
    with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
        row = conn.execute("SELECT checkpoint FROM tasker.workflow_steps"
                           " WHERE workflow_step_uuid = %s", (step_uuid,)).fetchone()
    assert row is not None
    checkpoint: dict[str, Any] | None = row["checkpoint"]
    return checkpoint


@pytest.mark.parametrize(("total", "every", "checkpoints"), [
    (100, 25, 4),  # happy path: tasker-core asserts >= 3
    (50, 5, 10),  # frequent checkpoints: >= 8
    (10, 20, 0),  # single batch: 0 and one attempt
])
def test_python_checkpoint_yield(client: CoreClient, module_db_url: str, total: int,
                                 every: int, checkpoints: int) -> None:
    steps = completed(client, CHECKPOINT_NS, CHECKPOINT_TASK, checkpoint_request(total, every))
    assert {"analyze_items", "aggregate_results"} <= set(steps)
    out = result(steps["aggregate_results"])
    assert out["total_processed"] == total and out["test_passed"] is True
    assert out["checkpoints_used"] == checkpoints
    assert out["distinct_items"] == out["item_count"] == total
    assert out["running_total"] == total * (total + 1) // 2
    worker = batch_worker(steps)
    assert worker.attempts == 1  # a checkpoint yield re-runs the step, not a new attempt
    saved = saved_checkpoint(module_db_url, worker.step_uuid)
    yields = -(-total // every) - 1  # a checkpoint before every chunk but the first
    if yields == 0:
        assert saved is None
    else:
        assert saved is not None and len(saved["history"]) == yields
        assert saved["cursor"] == yields * every and saved["items_processed"] == yields * every


def test_python_checkpoint_yield_zero_items(client: CoreClient) -> None:
    steps = completed(client, CHECKPOINT_NS, CHECKPOINT_TASK, checkpoint_request(0, 10))
    out = result(steps["aggregate_results"])
    assert out["total_processed"] == 0 and out.get("checkpoints_used", 0) == 0
    assert out["scenario"] == "no_batches"


def test_python_checkpoint_yield_transient_failure_resume(client: CoreClient,
                                                          module_db_url: str) -> None:
    steps = completed(client, CHECKPOINT_NS, CHECKPOINT_TASK,
                      checkpoint_request(100, 20, fail_after=50, fail_on=1), seconds=90)
    worker = batch_worker(steps)
    assert worker.current_state.upper() == "COMPLETE"
    assert worker.attempts == 2  # fails on attempt 1, succeeds on attempt 2
    out = result(steps["aggregate_results"])
    assert out["total_processed"] == 100
    # resumed from the checkpoint at 40: items 40-49 ran twice, but counted once
    assert out["distinct_items"] == out["item_count"] == 100
    assert out["running_total"] == 5050
    saved = saved_checkpoint(module_db_url, worker.step_uuid)
    assert saved is not None
    assert [h["cursor"] for h in saved["history"]] == [20, 40, 60, 80]
    audit = client.parse(core.StepAuditResponses, client.http.get(
        f"/v1/tasks/{worker.task_uuid}/workflow_steps/{worker.step_uuid}/audit"))
    assert [a.success for a in audit.root] == [True, False]  # newest first, as tasker-core


def test_python_checkpoint_yield_permanent_failure(client: CoreClient) -> None:
    created = client.create_task(create_task_request(
        CHECKPOINT_NS, CHECKPOINT_TASK,
        checkpoint_request(100, 25, fail_after=30, fail_on=1, permanent=True)))
    # tasker-core waits for a terminal task state (up to 30 s); Tasker's blocked task also
    # ends the wait (that is what the harness's wait_for_task_failure looks for)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        task = client.get_task(created.task_uuid)
        if task.status in TERMINAL_TASK_STATES or task.execution_status == "blocked_by_failures":
            break
        time.sleep(POLL_SECONDS)
    task = client.get_task(created.task_uuid)
    assert task.execution_status.upper() == "ERROR" or task.execution_status != "all_complete"
    assert task.execution_status == "blocked_by_failures" and task.failed_steps == 1
    steps = {s.name: s for s in client.list_task_steps(created.task_uuid)}
    worker = batch_worker(steps)
    assert worker.current_state.upper() == "ERROR"
    assert worker.attempts == 1  # tasker-core: <= 3, not retried excessively
    assert steps["aggregate_results"].current_state == "pending"


# --- resolver tests (resolver_tests.rs) -----------------------------------------------------


def test_python_method_dispatch(client: CoreClient) -> None:
    steps = completed(client, "resolver_tests_py", "method_dispatch_py",
                      {"data": {"amount": 100.0, "reason": "test_refund"}}, seconds=15)
    assert len(steps) == 4
    invoked = {name: result(step)["invoked_method"] for name, step in steps.items()}
    assert invoked == {"validate_step_py": "validate", "process_step_py": "process",
                       "refund_step_py": "refund", "default_call_step_py": "call"}
    assert result(steps["process_step_py"])["processed_amount"] == 110.0
    assert result(steps["refund_step_py"])["refund_reason"] == "test_refund"


def test_python_backward_compatibility(client: CoreClient) -> None:
    steps = completed(client, "linear_workflow_py", "mathematical_sequence_py",
                      {"even_number": 6}, seconds=10)
    assert [result(steps[f"linear_step_{i}_py"])["result"] for i in (1, 2, 3, 4)] == [
        36, 46, 138, 69.0]


def test_python_resolver_hints(client: CoreClient) -> None:
    """tasker-core's resolver hint scenario (its TypeScript fixture), for Python."""
    steps = completed(client, "resolver_tests_py", "resolver_hints_py", {}, seconds=15)
    assert {name: result(step)["invoked_method"] for name, step in steps.items()} == {
        "explicit_resolver_step": "call", "combined_hint_step": "process",
        "chain_resolution_step": "call"}


def test_an_unknown_resolver_hint_fails_the_step(client: CoreClient) -> None:
    created = client.create_task(create_task_request("resolver_tests_py",
                                                     "resolver_unknown_py", {}))
    client.wait_for_task_failure(created.task_uuid, 15)
    [step] = client.list_task_steps(created.task_uuid)
    assert step.current_state.upper() == "ERROR" and step.attempts == 1  # not retried
    assert isinstance(step.results, dict)
    error = step.results["error"]
    assert "unknown resolver 'payments_resolver'" in error["message"], step.results
