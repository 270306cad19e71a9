"""Decision points end to end (SPEC §5.1): conditional approval by amount band, nested
decisions, no_branches, invalid and over-limit requests, redelivered decision results."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from tasker_cli.cluster import Cluster, health
from tests.e2e.cluster_support import TEMPLATES, cluster_env, make_cluster
from tests.support import outcome, steps_of, submit, wait_task

pytestmark = pytest.mark.e2e

HANDLERS = "tests.e2e.dynamic_handlers"
INITIAL = {"validate_request", "routing_decision"}


@pytest.fixture(scope="module")
def cluster(module_db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    env = cluster_env(namespaces=["dynamic"], handlers=[HANDLERS],
                      templates=[str(TEMPLATES / "dynamic")],
                      TASKER_DECISIONS__MAX_STEPS_PER_DECISION="3",
                      TASKER_DECISIONS__MAX_DECISION_DEPTH="2")
    with make_cluster(module_db_url, tmp_path_factory.mktemp("logs"), env=env,
                      replicas={"results": 2}) as c:
        yield c


def run(url: str, name: str, context: dict[str, Any], timeout: float = 30.0) -> tuple[str, str]:
    rid = submit(url, name, {**context, "nonce": uuid.uuid4().hex}, namespace="dynamic")
    out = outcome(url, rid)
    assert out["outcome"] == "created", out
    return str(out["task_uuid"]), wait_task(url, out["task_uuid"], timeout=timeout)


def edges_of(url: str, task: str) -> set[tuple[str, str, str]]:
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT fn.name, tn.name, e.name FROM tasker.workflow_step_edges e"
            " JOIN tasker.workflow_steps f ON f.workflow_step_uuid = e.from_step_uuid"
            " JOIN tasker.named_steps fn ON fn.named_step_uuid = f.named_step_uuid"
            " JOIN tasker.workflow_steps t ON t.workflow_step_uuid = e.to_step_uuid"
            " JOIN tasker.named_steps tn ON tn.named_step_uuid = t.named_step_uuid"
            " WHERE t.task_uuid = %s", (task,)).fetchall()
    return {(str(a), str(b), str(c)) for a, b, c in rows}


def transitions(url: str, task: str) -> list[dict[str, Any]]:
    with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
        return conn.execute(
            "SELECT ns.name, tr.to_state, tr.metadata ->> 'event' AS event"
            " FROM tasker.workflow_step_transitions tr"
            " JOIN tasker.workflow_steps ws ON ws.workflow_step_uuid = tr.workflow_step_uuid"
            " JOIN tasker.named_steps ns ON ns.named_step_uuid = ws.named_step_uuid"
            " WHERE ws.task_uuid = %s", (task,)).fetchall()


def assert_all_ran_once(url: str, task: str, steps: dict[str, dict[str, Any]]) -> None:
    for name, row in steps.items():
        assert row["current_state"] == "complete", (name, row["current_state"])
        assert row["attempts"] == 1, (name, row["attempts"])
    enqueues: dict[str, int] = {}
    for tr in transitions(url, task):
        if tr["event"] == "enqueue":
            enqueues[tr["name"]] = enqueues.get(tr["name"], 0) + 1
    assert enqueues == dict.fromkeys(steps, 1)


@pytest.mark.parametrize(
    ("amount", "branches", "approvers"),
    [
        (250, ["auto_approve"], ["system"]),
        (999.99, ["auto_approve"], ["system"]),
        (1000, ["manager_approval"], ["manager"]),
        (4999, ["manager_approval"], ["manager"]),
        (5000, ["finance_review", "manager_approval"], ["finance", "manager"]),
        (25000, ["finance_review", "manager_approval"], ["finance", "manager"]),
    ],
)
def test_approval_routes_by_amount(cluster: Cluster, amount: float, branches: list[str],
                                   approvers: list[str]) -> None:
    url = cluster.database_url
    task, state = run(url, "approval_routing", {"amount": amount})
    assert state == "complete"
    steps = steps_of(url, task)
    assert set(steps) == INITIAL | set(branches) | {"finalize_approval"}
    assert_all_ran_once(url, task, steps)
    assert steps["finalize_approval"]["results"]["result"] == {
        "branches": branches, "approvers": approvers}
    # the convergence step depends on exactly the branches that exist
    edges = edges_of(url, task)
    assert {(a, b) for a, b, _ in edges if b == "finalize_approval"} == {
        (name, "finalize_approval") for name in branches}
    assert {(a, b) for a, b, _ in edges if a == "routing_decision"} == {
        ("routing_decision", name) for name in branches}


@pytest.mark.parametrize(
    ("priority", "carrier", "expected", "methods"),
    [
        ("standard", None, {"standard_shipping"}, ["standard"]),
        ("expedited", "air", {"expedited_review", "choose_carrier", "carrier_air"}, ["air"]),
        ("expedited", "ground", {"expedited_review", "choose_carrier", "carrier_ground"},
         ["ground"]),
    ],
)
def test_nested_decision(cluster: Cluster, priority: str, carrier: str | None,
                         expected: set[str], methods: list[str]) -> None:
    url = cluster.database_url
    context: dict[str, Any] = {"order_id": "o-1", "priority": priority}
    if carrier:
        context["carrier"] = carrier
    task, state = run(url, "order_shipping", context)
    assert state == "complete"
    steps = steps_of(url, task)
    assert set(steps) == {"receive_order", "classify_order", "confirm_shipment",
                          "notify_customer"} | expected
    assert_all_ran_once(url, task, steps)
    assert steps["notify_customer"]["results"]["result"] == {"confirmed": methods}
    shipping = expected & {"standard_shipping", "carrier_air", "carrier_ground"}
    assert {(a, b) for a, b, _ in edges_of(url, task) if b == "confirm_shipment"} == {
        (name, "confirm_shipment") for name in shipping}


def test_no_branches_completes_without_convergence(cluster: Cluster) -> None:
    url = cluster.database_url
    task, state = run(url, "approval_routing", {"amount": 100, "route_override": []})
    assert state == "complete"
    steps = steps_of(url, task)
    assert set(steps) == INITIAL
    outcome_ = steps["routing_decision"]["results"]["result"]["decision_point_outcome"]
    assert outcome_ == {"type": "no_branches"}


def _error(steps: dict[str, dict[str, Any]], name: str) -> str:
    row = steps[name]
    assert row["current_state"] == "error", row["current_state"]
    return str(row["results"]["error"]["message"])


@pytest.mark.parametrize(
    ("override", "offending"),
    [
        (["manager_approval", "wire_money"], "wire_money"),
        (["validate_request"], "validate_request"),  # exists, but not below the decision
    ],
)
def test_invalid_step_name_fails_the_decision(cluster: Cluster, override: list[str],
                                              offending: str) -> None:
    url = cluster.database_url
    task, state = run(url, "approval_routing", {"amount": 100, "route_override": override})
    assert state == "blocked_by_failures"
    steps = steps_of(url, task)
    assert set(steps) == INITIAL  # nothing half-created
    message = _error(steps, "routing_decision")
    assert offending in message
    assert "routing_decision" in message
    assert steps["routing_decision"]["attempts"] == 1  # permanent: not retried


def test_too_many_steps_fails_the_decision(cluster: Cluster) -> None:
    # all three branches + the convergence step = 4 > max_steps_per_decision (3)
    url = cluster.database_url
    task, state = run(url, "approval_routing",
                      {"amount": 100, "route_override": list(("auto_approve", "manager_approval",
                                                               "finance_review"))})
    assert state == "blocked_by_failures"
    steps = steps_of(url, task)
    assert set(steps) == INITIAL
    message = _error(steps, "routing_decision")
    assert "routing_decision" in message
    assert "4 steps" in message
    assert "limit is 3" in message


def test_too_deep_fails_the_innermost_decision(cluster: Cluster) -> None:
    url = cluster.database_url
    task, state = run(url, "deep_decisions", {})
    assert state == "blocked_by_failures"
    steps = steps_of(url, task)
    assert set(steps) == {"start", "level_1", "level_2", "level_3"}
    assert steps["level_1"]["current_state"] == "complete"
    assert steps["level_2"]["current_state"] == "complete"
    message = _error(steps, "level_3")
    assert "level_3" in message
    assert "limit is 2" in message


_DUPLICATOR = """
CREATE FUNCTION public.duplicate_decision_results() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.headers ->> 'duplicate' IS NULL AND EXISTS (
        SELECT 1 FROM tasker.workflow_steps ws
          JOIN tasker.named_steps ns ON ns.named_step_uuid = ws.named_step_uuid
         WHERE ws.workflow_step_uuid = (NEW.message ->> 'step_uuid')::uuid
           AND ns.name = 'routing_decision') THEN
        FOR i IN 1..3 LOOP
            PERFORM tasker.send_v1('orchestration_step_results', NEW.message,
                                   jsonb_build_object('duplicate', i));
        END LOOP;
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER duplicate_decision_results AFTER INSERT ON pgmq.q_orchestration_step_results
    FOR EACH ROW EXECUTE FUNCTION public.duplicate_decision_results();
"""


def _duplicates_seen(cluster: Cluster) -> int:
    total = 0
    for proc in cluster.processes:
        if proc.name == "results":
            detail = health(proc.health_port, "/health/detailed")
            assert detail is not None
            total += int(detail["details"]["results"]["duplicates"])
    return total


def test_redelivered_decision_result_creates_nothing_twice(cluster: Cluster) -> None:
    url = cluster.database_url
    before = _duplicates_seen(cluster)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(_DUPLICATOR)
    try:
        task, state = run(url, "approval_routing", {"amount": 7500})
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("DROP TRIGGER duplicate_decision_results"
                         " ON pgmq.q_orchestration_step_results;"
                         " DROP FUNCTION public.duplicate_decision_results()")
    assert state == "complete"
    steps = steps_of(url, task)
    assert set(steps) == INITIAL | {"manager_approval", "finance_review", "finalize_approval"}
    assert_all_ran_once(url, task, steps)
    completes = [t for t in transitions(url, task)
                 if t["name"] == "routing_decision" and t["to_state"] == "complete"]
    assert len(completes) == 1
    assert edges_of(url, task) == {
        ("validate_request", "routing_decision", "provides"),
        ("routing_decision", "manager_approval", "provides"),
        ("routing_decision", "finance_review", "provides"),
        ("manager_approval", "finalize_approval", "provides"),
        ("finance_review", "finalize_approval", "provides"),
    }
    assert _duplicates_seen(cluster) - before >= 3  # every copy was delivered and skipped
