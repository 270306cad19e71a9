"""Plans for steps created at run time (SPEC §5): decision outcomes and batch fan-out."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from tasker_shared.domain.dynamic import TEMPLATE_STEP_KEY, decision_warnings, plan_batches, plan_decision
from tasker_shared.domain.template import TaskTemplate, parse_template, steps_for_decision
from tasker_shared.errors import ValidationError
from tasker_shared.templates_io import load_template_file

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "templates"


def _load(name: str) -> TaskTemplate:
    return load_template_file(FIXTURES / f"{name}.yaml")


def _decide(template: TaskTemplate, step: str, outcome: Any, existing: list[str],
            max_steps: int = 100, max_depth: int = 20) -> Any:
    return plan_decision(template, step, outcome, existing, max_steps=max_steps,
                         max_depth=max_depth)


APPROVAL_INITIAL = ["validate_request", "routing_decision"]


class TestDecisionPlans:
    def test_create_steps_with_convergence(self) -> None:
        plan = _decide(_load("conditional_approval"), "routing_decision",
                       {"type": "create_steps", "step_names": ["manager_approval",
                                                               "finance_review"]},
                       APPROVAL_INITIAL)
        assert [s["name"] for s in plan.steps] == [
            "finalize_approval", "manager_approval", "finance_review"]
        assert {(e["from"], e["to"]) for e in plan.edges} == {
            ("routing_decision", "manager_approval"), ("routing_decision", "finance_review"),
            ("manager_approval", "finalize_approval"), ("finance_review", "finalize_approval")}
        assert {e["name"] for e in plan.edges} == {"provides"}

    def test_no_branches_creates_nothing(self) -> None:
        plan = _decide(_load("conditional_approval"), "routing_decision",
                       {"type": "no_branches"}, APPROVAL_INITIAL)
        assert plan.empty

    @pytest.mark.parametrize("name", ["wire_money", "validate_request", "routing_decision"])
    def test_names_outside_the_decision_graph_are_rejected(self, name: str) -> None:
        with pytest.raises(ValidationError, match=name):
            _decide(_load("conditional_approval"), "routing_decision",
                    {"type": "create_steps", "step_names": ["auto_approve", name]},
                    APPROVAL_INITIAL)

    def test_step_limit_names_the_decision(self) -> None:
        with pytest.raises(ValidationError, match=r"routing_decision.*3 steps.*limit is 2"):
            _decide(_load("conditional_approval"), "routing_decision",
                    {"type": "create_steps", "step_names": ["manager_approval",
                                                            "finance_review"]},
                    APPROVAL_INITIAL, max_steps=2)

    def test_depth_limit(self) -> None:
        template = _load("nested_decision")
        existing = ["receive_order", "classify_order", "expedited_review", "choose_carrier"]
        outcome = {"type": "create_steps", "step_names": ["carrier_air"]}
        assert not _decide(template, "choose_carrier", outcome, existing, max_depth=2).empty
        with pytest.raises(ValidationError, match=r"choose_carrier.*2 decisions deep.*limit is 1"):
            _decide(template, "choose_carrier", outcome, existing, max_depth=1)

    @pytest.mark.parametrize("outcome", [
        "create_steps", {"type": "maybe"}, {"type": "create_steps", "step_names": "x"},
        {"type": "create_steps", "step_names": [1]},
    ])
    def test_malformed_outcomes(self, outcome: Any) -> None:
        with pytest.raises(ValidationError, match="routing_decision"):
            _decide(_load("conditional_approval"), "routing_decision", outcome,
                    APPROVAL_INITIAL)

    def test_replanning_after_creation_adds_nothing(self) -> None:
        template = _load("conditional_approval")
        outcome = {"type": "create_steps", "step_names": ["auto_approve"]}
        first = _decide(template, "routing_decision", outcome, APPROVAL_INITIAL)
        again = _decide(template, "routing_decision", outcome,
                        APPROVAL_INITIAL + [s["name"] for s in first.steps])
        assert again.empty

    def test_existing_convergence_waits_for_steps_of_a_later_decision(self) -> None:
        def step(name: str, *deps: str, type: str = "standard") -> dict[str, Any]:
            return {"name": name, "type": type, "dependencies": list(deps),
                    "handler": {"callable": f"x.{name}"}}

        template = parse_template({"name": "t", "namespace_name": "ns", "version": "1",
                                   "steps": [
            step("start"), step("d1", "start", type="decision"), step("a", "d1"),
            step("b", "d1"), step("d2", "b", type="decision"), step("c", "d2"),
            step("join", "a", "c", type="deferred_convergence")]})
        first = steps_for_decision(template, "d1", ["a", "b"], ["start", "d1"])
        assert set(first.step_names) == {"a", "b", "d2", "join"}
        assert ("a", "join") in first.edges
        second = steps_for_decision(template, "d2", ["c"], ["start", "d1", *first.step_names])
        assert second.step_names == ("c",)
        assert set(second.edges) == {("d2", "c"), ("c", "join")}


def _batch(outcome: Any, existing: tuple[str, ...] = ("analyze_csv",), max_batches: int = 50,
           template: TaskTemplate | None = None) -> Any:
    return plan_batches(template or _load("batch_csv"), "analyze_csv", outcome, existing,
                        max_batches=max_batches)


def _cursors(n: int) -> list[dict[str, Any]]:
    return [{"batch_id": f"{i:03d}", "start_cursor": (i - 1) * 10, "end_cursor": i * 10,
             "batch_size": 10} for i in range(1, n + 1)]


class TestBatchPlans:
    def test_create_batches(self) -> None:
        plan = _batch({"type": "create_batches", "worker_template_name": "process_csv_batch",
                       "cursor_configs": _cursors(3), "total_items": 30})
        names = [s["name"] for s in plan.steps]
        assert names == ["process_csv_batch_001", "process_csv_batch_002",
                         "process_csv_batch_003", "aggregate_csv_results"]
        worker = plan.steps[1]
        assert worker["max_attempts"] == 3
        assert worker["retryable"] is True
        assert worker["inputs"]["operation"] == "inventory_analysis"  # template init kept
        assert worker["inputs"]["cursor"] == _cursors(3)[1]
        assert worker["inputs"]["batch_metadata"] == {
            "cursor_field": "row_number", "failure_strategy": "continue_on_failure",
            "batchable_step": "analyze_csv"}
        assert worker["inputs"]["is_no_op"] is False
        assert worker["inputs"][TEMPLATE_STEP_KEY] == "process_csv_batch"
        edges = {(e["from"], e["to"], e["name"]) for e in plan.edges}
        assert edges == {
            *{("analyze_csv", n, "batch_dependency") for n in names[:3]},
            *{(n, "aggregate_csv_results", "worker_to_convergence") for n in names[:3]}}

    def test_no_batches_makes_the_placeholder(self) -> None:
        plan = _batch({"type": "no_batches"})
        assert [s["name"] for s in plan.steps] == ["process_csv_batch_000",
                                                   "aggregate_csv_results"]
        inputs = plan.steps[0]["inputs"]
        assert inputs["is_no_op"] is True
        assert inputs["cursor"] == {"batch_id": "000", "start_cursor": 0, "end_cursor": 0,
                                    "batch_size": 0}

    @pytest.mark.parametrize(("outcome", "message"), [
        ({"type": "create_batches", "worker_template_name": "nope",
          "cursor_configs": _cursors(1)}, "worker template 'nope' is not a step"),
        ({"type": "create_batches", "worker_template_name": "aggregate_csv_results",
          "cursor_configs": _cursors(1)}, "deferred_convergence step, not a batch_worker"),
        ({"type": "create_batches", "worker_template_name": "process_csv_batch",
          "cursor_configs": _cursors(4)}, "asked for 4 batches; the limit is 3"),
        ({"type": "create_batches", "worker_template_name": "process_csv_batch",
          "cursor_configs": []}, "non-empty cursor_configs"),
        ({"type": "create_batches", "worker_template_name": "process_csv_batch",
          "cursor_configs": _cursors(1) * 2}, "duplicate batch ids"),
        ({"type": "create_batches", "worker_template_name": "process_csv_batch",
          "cursor_configs": [{"batch_id": "a-b"}]}, "letters, digits or underscores"),
        ({"type": "split"}, "'create_batches' or 'no_batches'"),
    ])
    def test_validation_errors_name_the_problem(self, outcome: Any, message: str) -> None:
        with pytest.raises(ValidationError, match="analyze_csv") as info:
            _batch(outcome, max_batches=3)
        assert message in str(info.value)

    def test_no_batches_without_a_worker_template_creates_nothing(self) -> None:
        """tasker-core's CSV analysers name no worker template: nothing to process, nothing
        to create, the analyser completes alone (it used to fail its step)."""
        template = _load("batch_csv")
        steps = tuple(dataclasses.replace(s, handler=dataclasses.replace(
                          s.handler, initialization={}))
                      if s.name == "analyze_csv" else s for s in template.steps)
        bare = dataclasses.replace(template, steps=steps)
        assert _batch({"type": "no_batches"}, template=bare).empty
        named = _batch({"type": "no_batches", "worker_template_name": "process_csv_batch"},
                       template=bare)
        assert [s["name"] for s in named.steps] == ["process_csv_batch_000",
                                                    "aggregate_csv_results"]

    def test_missing_batch_config(self) -> None:
        template = _load("batch_csv")
        steps = tuple(dataclasses.replace(s, batch_config=None)
                      if s.name == "process_csv_batch" else s for s in template.steps)
        broken = dataclasses.replace(template, steps=steps)
        with pytest.raises(ValidationError, match="has no batch_config"):
            _batch({"type": "no_batches"}, template=broken)

    def test_existing_convergence_is_not_created_again(self) -> None:
        plan = _batch({"type": "no_batches"}, existing=("analyze_csv", "aggregate_csv_results"))
        assert [s["name"] for s in plan.steps] == ["process_csv_batch_000"]
        assert ("process_csv_batch_000", "aggregate_csv_results", "worker_to_convergence") in {
            (e["from"], e["to"], e["name"]) for e in plan.edges}


class TestDecisionWarnings:
    def _plan(self) -> Any:
        return _decide(_load("conditional_approval"), "routing_decision",
                       {"type": "create_steps", "step_names": ["manager_approval",
                                                               "finance_review"]},
                       APPROVAL_INITIAL)

    def test_quiet_below_the_thresholds(self) -> None:
        assert decision_warnings(_load("conditional_approval"), "routing_decision", self._plan(),
                                 warn_steps=50, warn_depth=10) == []

    def test_step_and_depth_thresholds(self) -> None:
        warnings = decision_warnings(_load("conditional_approval"), "routing_decision",
                                     self._plan(), warn_steps=2, warn_depth=0)
        assert len(warnings) == 2
        assert "creates 3 steps (warning threshold 2)" in warnings[0]
        assert "nested 1 decisions deep (warning threshold 0)" in warnings[1]
