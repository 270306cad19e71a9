"""Task creation from templates: initial steps and edges (SPEC §4.3), dedup identity (§3.4)."""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import pytest
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from tasker_shared.contracts.payloads import TaskRequest
from tasker_shared.domain.template import IdentityStrategy, TaskTemplate, initial_step_names
from tasker_shared.errors import ValidationError
from tasker_shared.store.tasks import create_task, task_identity
from tasker_shared.store.templates import register_template
from tasker_shared.templates_io import load_template_file
from tests.integration.dag_support import DictConn, named_task

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "templates"
TABLES = ("tasks", "task_transitions", "workflow_steps", "workflow_step_edges",
          "workflow_step_transitions")


def template(name: str) -> TaskTemplate:
    return load_template_file(FIXTURES / f"{name}.yaml")


def request_for(t: TaskTemplate, context: dict[str, Any] | None = None,
                **fields: Any) -> TaskRequest:
    return TaskRequest(name=t.name, namespace=t.namespace, version=t.version,
                       context=context or {}, **fields)


def create(conn: DictConn, t: TaskTemplate, req: TaskRequest,
           nt: UUID | None = None) -> UUID | None:
    nt = nt or register_template(conn, t)
    return create_task(conn, named_task_uuid=nt, template=t, request=req,
                       identity=task_identity(t, nt, req))


def counts(conn: DictConn) -> dict[str, int]:
    out = {}
    for table in TABLES:
        row = conn.execute(f"SELECT count(*) AS n FROM tasker.{table}").fetchone()
        assert row is not None
        out[table] = row["n"]
    return out


def task_graph(conn: DictConn,
               task: UUID) -> tuple[dict[str, dict[str, Any]], set[tuple[str, str]]]:
    steps = conn.execute(
        "SELECT ns.name, ws.retryable, ws.max_attempts, ws.inputs, ws.attempts, ws.in_process,"
        "       ws.processed, ws.current_state AS to_state, st.sort_key"
        "  FROM tasker.workflow_steps ws JOIN tasker.named_steps ns USING (named_step_uuid)"
        "  JOIN LATERAL (SELECT x.sort_key FROM tasker.workflow_step_transitions x"
        "                 WHERE x.workflow_step_uuid = ws.workflow_step_uuid"
        "                 ORDER BY x.sort_key DESC LIMIT 1) st ON true"
        " WHERE ws.task_uuid = %s", (task,)).fetchall()
    edges = conn.execute(
        "SELECT fn.name AS f, tn.name AS t, e.name AS kind FROM tasker.workflow_step_edges e"
        "  JOIN tasker.workflow_steps f ON f.workflow_step_uuid = e.from_step_uuid"
        "  JOIN tasker.named_steps fn ON fn.named_step_uuid = f.named_step_uuid"
        "  JOIN tasker.workflow_steps t ON t.workflow_step_uuid = e.to_step_uuid"
        "  JOIN tasker.named_steps tn ON tn.named_step_uuid = t.named_step_uuid"
        " WHERE t.task_uuid = %s", (task,)).fetchall()
    assert {e["kind"] for e in edges} <= {"provides"}
    return {s["name"]: s for s in steps}, {(e["f"], e["t"]) for e in edges}


EXPECTED: dict[str, tuple[set[str], set[tuple[str, str]]]] = {
    "linear_workflow": (
        {"linear_step_1", "linear_step_2", "linear_step_3", "linear_step_4"},
        {("linear_step_1", "linear_step_2"), ("linear_step_2", "linear_step_3"),
         ("linear_step_3", "linear_step_4")}),
    "diamond_workflow": (
        {"diamond_start", "diamond_branch_b", "diamond_branch_c", "diamond_end"},
        {("diamond_start", "diamond_branch_b"), ("diamond_start", "diamond_branch_c"),
         ("diamond_branch_b", "diamond_end"), ("diamond_branch_c", "diamond_end")}),
    "tree_workflow": (
        {"tree_root", "tree_branch_left", "tree_branch_right", "tree_leaf_d", "tree_leaf_e",
         "tree_leaf_f", "tree_leaf_g", "tree_final_convergence"},
        {("tree_root", "tree_branch_left"), ("tree_root", "tree_branch_right"),
         ("tree_branch_left", "tree_leaf_d"), ("tree_branch_left", "tree_leaf_e"),
         ("tree_branch_right", "tree_leaf_f"), ("tree_branch_right", "tree_leaf_g"),
         ("tree_leaf_d", "tree_final_convergence"), ("tree_leaf_e", "tree_final_convergence"),
         ("tree_leaf_f", "tree_final_convergence"), ("tree_leaf_g", "tree_final_convergence")}),
    # Decision: nothing downstream of the decision, no deferred convergence step.
    "conditional_approval": ({"validate_request", "routing_decision"},
                             {("validate_request", "routing_decision")}),
    "nested_decision": ({"receive_order", "classify_order"},
                        {("receive_order", "classify_order")}),
    # Batch: no batch worker template, no deferred convergence step.
    "batch_csv": ({"analyze_csv"}, set()),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_created_steps_and_edges(conn: DictConn, name: str) -> None:
    t = template(name)
    req = request_for(t, {"n": 1}, tags=("a", "b"), priority=7, initiator="tester")
    task = create(conn, t, req)
    assert task is not None
    steps, edges = task_graph(conn, task)
    expected_steps, expected_edges = EXPECTED[name]
    assert set(steps) == expected_steps
    assert edges == expected_edges
    for step_name, row in steps.items():
        spec = t.step(step_name)
        assert row["retryable"] is spec.retry.retryable
        assert row["max_attempts"] == spec.retry.max_attempts
        assert row["inputs"] == dict(spec.handler.initialization)
        assert (row["to_state"], row["sort_key"]) == ("pending", 1)
        assert row["attempts"] is None
        assert not row["in_process"]
        assert not row["processed"]
    row = conn.execute(
        "SELECT t.*, tt.to_state, tt.sort_key FROM tasker.tasks t JOIN tasker.task_transitions tt"
        " ON tt.task_uuid = t.task_uuid AND tt.most_recent WHERE t.task_uuid = %s",
        (task,)).fetchone()
    assert row is not None
    assert (row["to_state"], row["sort_key"]) == ("pending", 1)
    assert row["context"] == {"n": 1}
    assert row["tags"] == ["a", "b"]
    assert row["priority"] == 7
    assert row["initiator"] == "tester"
    assert row["correlation_id"] == req.correlation_id
    assert not row["complete"]


def test_diamond_end_keeps_its_retry_policy(conn: DictConn) -> None:
    t = template("diamond_workflow")
    task = create(conn, t, request_for(t))
    assert task is not None
    steps, _ = task_graph(conn, task)
    assert steps["diamond_end"]["max_attempts"] == 5
    assert steps["diamond_branch_b"]["inputs"] == {"weight": 2}


def test_every_valid_fixture_creates_its_initial_set(conn: DictConn) -> None:
    for path in sorted(FIXTURES.glob("*.yaml")):
        t = template(path.stem)
        task = create(conn, t, request_for(t, {"fixture": path.stem}, idempotency_key=path.stem))
        assert task is not None
        steps, edges = task_graph(conn, task)
        names = initial_step_names(t)
        assert set(steps) == set(names), path.stem
        assert edges == {(d, n) for n in names for d in t.step(n).dependencies if d in names}


def test_duplicate_creation_returns_none_and_creates_nothing(conn: DictConn) -> None:
    t = template("tree_workflow")
    nt = register_template(conn, t)
    assert create(conn, t, request_for(t, {"a": 1}), nt) is not None
    before = counts(conn)
    assert create(conn, t, request_for(t, {"a": 1}), nt) is None
    assert counts(conn) == before


def test_concurrent_duplicates_create_exactly_one_task(conn: DictConn, db_url: str) -> None:
    t = template("diamond_workflow")
    nt = register_template(conn, t)
    workers = 6
    barrier = threading.Barrier(workers)
    results: list[UUID | None] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            with psycopg.connect(db_url, row_factory=dict_row) as c:
                barrier.wait(5)
                with c.transaction():
                    results.append(create(c, t, request_for(t, {"same": True}), nt))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(workers)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(20)
    assert not errors
    created = [r for r in results if r is not None]
    assert len(created) == 1
    assert len(results) == workers
    assert counts(conn)["tasks"] == 1
    assert counts(conn)["workflow_steps"] == 4


def test_concurrent_creators_of_new_shared_step_names_do_not_deadlock(
        conn: DictConn, db_url: str) -> None:
    """Different templates introducing the same new step names in opposite orders."""
    nt = named_task(conn)
    names = [f"shared_{i:02d}" for i in range(40)]
    rounds = 5
    errors: list[BaseException] = []

    def run(order: list[str], tag: str) -> None:
        try:
            with psycopg.connect(db_url, row_factory=dict_row) as c:
                for i in range(rounds):
                    steps = [{"name": f"{n}_{i}"} for n in order]
                    c.execute("SELECT tasker.create_task_v1(%s, %s, %s, '[]')",
                              (nt, Jsonb({"identity_hash": f"{tag}{i}",
                                          "correlation_id": str(nt)}), Jsonb(steps)))
                    c.commit()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(names, "a")),
               threading.Thread(target=run, args=(names[::-1], "b"))]
    for th in threads:
        th.start()
    for th in threads:
        th.join(30)
    assert not errors
    assert counts(conn)["tasks"] == 2 * rounds


def test_cycle_is_refused_and_nothing_is_created(conn: DictConn) -> None:
    nt = named_task(conn)
    before = counts(conn)
    steps = [{"name": "cy_a"}, {"name": "cy_b"}, {"name": "cy_c"}]
    edges = [{"from": "cy_a", "to": "cy_b"}, {"from": "cy_b", "to": "cy_c"},
             {"from": "cy_c", "to": "cy_a"}]
    with pytest.raises(psycopg.Error) as info:
        conn.execute("SELECT tasker.create_task_v1(%s, %s, %s, %s)",
                     (nt, Jsonb({"identity_hash": "cycle", "correlation_id": str(nt)}),
                      Jsonb(steps), Jsonb(edges)))
    assert info.value.sqlstate == "TK400"
    assert counts(conn) == before


# -- identity strategies ----------------------------------------------------------------------


def test_strict_identity_ignores_key_order(conn: DictConn) -> None:
    t = template("linear_workflow")
    nt = register_template(conn, t)
    first = create(conn, t, request_for(t, {"a": 1, "b": {"x": 1, "y": [1, 2]}}), nt)
    assert first is not None
    assert create(conn, t, request_for(t, {"b": {"y": [1, 2], "x": 1}, "a": 1}), nt) is None
    assert create(conn, t, request_for(t, {"a": 1, "b": {"x": 1, "y": [2, 1]}}), nt) is not None


def test_idempotency_key_overrides_the_strategy(conn: DictConn) -> None:
    for strategy in IdentityStrategy:
        t = dataclasses.replace(template("linear_workflow"), identity_strategy=strategy,
                                name=f"linear_{strategy.value}")
        nt = register_template(conn, t)
        assert create(conn, t, request_for(t, {"a": 1}, idempotency_key="k-1"), nt) is not None
        # Same key, another context: still a duplicate.
        assert create(conn, t, request_for(t, {"a": 2}, idempotency_key="k-1"), nt) is None
        assert create(conn, t, request_for(t, {"a": 1}, idempotency_key="k-2"), nt) is not None


def test_always_unique_creates_a_task_every_time(conn: DictConn) -> None:
    t = dataclasses.replace(template("linear_workflow"),
                            identity_strategy=IdentityStrategy.ALWAYS_UNIQUE)
    nt = register_template(conn, t)
    row = conn.execute("SELECT identity_strategy::text AS s FROM tasker.named_tasks"
                       " WHERE named_task_uuid = %s", (nt,)).fetchone()
    assert row is not None
    assert row["s"] == "always_unique"
    made = {create(conn, t, request_for(t, {"a": 1}), nt) for _ in range(3)}
    assert None not in made
    assert len(made) == 3


def test_caller_provided_requires_a_key(conn: DictConn) -> None:
    t = dataclasses.replace(template("linear_workflow"),
                            identity_strategy=IdentityStrategy.CALLER_PROVIDED)
    nt = register_template(conn, t)
    with pytest.raises(ValidationError, match="idempotency_key"):
        create(conn, t, request_for(t, {"a": 1}), nt)
    assert counts(conn)["tasks"] == 0
    assert create(conn, t, request_for(t, {"a": 1}, idempotency_key="x"), nt) is not None


def test_same_context_in_another_template_is_not_a_duplicate(conn: DictConn) -> None:
    linear, diamond = template("linear_workflow"), template("diamond_workflow")
    assert create(conn, linear, request_for(linear, {"a": 1})) is not None
    assert create(conn, diamond, request_for(diamond, {"a": 1})) is not None
