"""Graph computations on templates: initial set, decision plans, convergence, levels."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tasker_shared.domain.template import (
    DecisionPlan,
    TaskTemplate,
    convergence_steps_for_worker_template,
    decision_graph_names,
    dependency_levels,
    initial_step_names,
    parse_template,
    steps_for_decision,
)
from tasker_shared.errors import ValidationError
from tasker_shared.templates_io import load_template_file

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "templates"


def _load(name: str) -> TaskTemplate:
    return load_template_file(FIXTURES / f"{name}.yaml")


def _template(*steps: dict[str, Any]) -> TaskTemplate:
    return parse_template(
        {"name": "t", "namespace_name": "ns", "version": "1", "steps": list(steps)}
    )


def _step(name: str, *deps: str, type: str = "standard", **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "type": type,
        "dependencies": list(deps),
        "handler": {"callable": f"x.{name}"},
        **extra,
    }


@pytest.mark.parametrize(
    ("fixture", "expected"),
    [
        ("linear_workflow", ["linear_step_1", "linear_step_2", "linear_step_3", "linear_step_4"]),
        (
            "diamond_workflow",
            ["diamond_start", "diamond_branch_b", "diamond_branch_c", "diamond_end"],
        ),
        (
            "mixed_dag_workflow",
            [
                "dag_init",
                "dag_process_left",
                "dag_process_right",
                "dag_validate",
                "dag_transform",
                "dag_analyze",
                "dag_finalize",
            ],
        ),
        ("conditional_approval", ["validate_request", "routing_decision"]),
        ("nested_decision", ["receive_order", "classify_order"]),
        ("batch_csv", ["analyze_csv"]),
        ("refund_order", ["validate_refund", "choose_path"]),
    ],
)
def test_initial_step_names(fixture: str, expected: list[str]) -> None:
    assert initial_step_names(_load(fixture)) == expected


def test_tree_initial_set_is_everything() -> None:
    template = _load("tree_workflow")
    assert initial_step_names(template) == list(template.step_names)


def test_refund_example_of_spec_4_4() -> None:
    template = _load("refund_order")
    plan = steps_for_decision(
        template, "choose_path", ["auto_refund"], {"validate_refund", "choose_path"}
    )
    assert plan == DecisionPlan(
        decision_step="choose_path",
        step_names=("auto_refund", "notify_customer"),
        edges=(("choose_path", "auto_refund"), ("auto_refund", "notify_customer")),
    )


def test_refund_both_branches() -> None:
    plan = steps_for_decision(
        _load("refund_order"),
        "choose_path",
        ["manual_review", "auto_refund", "auto_refund"],
        {"validate_refund", "choose_path"},
    )
    assert plan.step_names == ("auto_refund", "manual_review", "notify_customer")
    assert plan.edges == (
        ("choose_path", "auto_refund"),
        ("choose_path", "manual_review"),
        ("auto_refund", "notify_customer"),
        ("manual_review", "notify_customer"),
    )


def test_no_branches_creates_nothing() -> None:
    plan = steps_for_decision(_load("refund_order"), "choose_path", [], {"choose_path"})
    assert plan.step_names == ()
    assert plan.edges == ()


@pytest.mark.parametrize(
    ("chosen", "steps", "edges"),
    [
        (
            ["auto_approve"],
            ("finalize_approval", "auto_approve"),
            (("auto_approve", "finalize_approval"), ("routing_decision", "auto_approve")),
        ),
        (
            ["manager_approval", "finance_review"],
            ("finalize_approval", "manager_approval", "finance_review"),
            (
                ("manager_approval", "finalize_approval"),
                ("finance_review", "finalize_approval"),
                ("routing_decision", "manager_approval"),
                ("routing_decision", "finance_review"),
            ),
        ),
    ],
)
def test_conditional_approval_routes(
    chosen: list[str], steps: tuple[str, ...], edges: tuple[tuple[str, str], ...]
) -> None:
    template = _load("conditional_approval")
    assert decision_graph_names(template, "routing_decision") == {
        "auto_approve",
        "manager_approval",
        "finance_review",
        "finalize_approval",
    }
    plan = steps_for_decision(
        template, "routing_decision", chosen, {"validate_request", "routing_decision"}
    )
    assert plan.step_names == steps  # declaration order: finalize_approval is declared first
    assert plan.edges == edges


def test_nested_decisions() -> None:
    template = _load("nested_decision")
    initial = {"receive_order", "classify_order"}
    assert decision_graph_names(template, "classify_order") == {
        "standard_shipping",
        "expedited_review",
        "choose_carrier",
        "confirm_shipment",
        "notify_customer",
    }
    assert decision_graph_names(template, "choose_carrier") == {
        "carrier_ground",
        "carrier_air",
        "confirm_shipment",
        "notify_customer",
    }

    standard = steps_for_decision(template, "classify_order", ["standard_shipping"], initial)
    assert standard.step_names == ("standard_shipping", "confirm_shipment", "notify_customer")
    assert standard.edges == (
        ("classify_order", "standard_shipping"),
        ("standard_shipping", "confirm_shipment"),
        ("confirm_shipment", "notify_customer"),
    )

    expedited = steps_for_decision(template, "classify_order", ["expedited_review"], initial)
    assert expedited.step_names == ("expedited_review", "choose_carrier")
    assert expedited.edges == (
        ("classify_order", "expedited_review"),
        ("expedited_review", "choose_carrier"),
    )

    existing = initial | set(expedited.step_names)
    air = steps_for_decision(template, "choose_carrier", ["carrier_air"], existing)
    assert air.step_names == ("carrier_air", "confirm_shipment", "notify_customer")
    assert air.edges == (
        ("choose_carrier", "carrier_air"),
        ("carrier_air", "confirm_shipment"),
        ("confirm_shipment", "notify_customer"),
    )

    with pytest.raises(
        ValidationError,
        match="'standard_shipping' is not a descendant of decision step 'choose_carrier'",
    ):
        steps_for_decision(template, "choose_carrier", ["standard_shipping"], existing)


def test_requesting_a_nested_decision_directly() -> None:
    template = _load("nested_decision")
    plan = steps_for_decision(template, "classify_order", ["choose_carrier"], {"classify_order"})
    assert plan.step_names == ("choose_carrier",)
    assert plan.edges == (("classify_order", "choose_carrier"),)


def test_replaying_a_decision_creates_nothing_new() -> None:
    template = _load("refund_order")
    everything = set(template.step_names)
    assert steps_for_decision(template, "choose_path", ["auto_refund"], everything).step_names == ()


def test_dependents_and_post_convergence_chains() -> None:
    template = _template(
        _step("start"),
        _step("decide", "start", type="decision"),
        _step("a", "decide"),
        _step("b", "decide"),
        _step("a2", "a"),
        _step("ab", "a", "b"),
        _step("join", "a2", "b", type="deferred_convergence"),
        _step("after", "join", "start"),
        _step("after2", "after"),
        _step("needs_b", "join", "b"),
    )
    plan = steps_for_decision(template, "decide", ["a"], {"start", "decide"})
    # a2 and ab follow a; ab's missing parent b falls back to the decision; join converges
    # over a2 only; after/after2 follow the convergence; needs_b waits for b, never chosen.
    assert plan.step_names == ("a", "a2", "ab", "join", "after", "after2")
    assert plan.edges == (
        ("decide", "a"),
        ("a", "a2"),
        ("a", "ab"),
        ("decide", "ab"),
        ("a2", "join"),
        ("join", "after"),
        ("start", "after"),
        ("after", "after2"),
    )


def test_batch_templates_inside_a_decision_graph() -> None:
    template = _template(
        _step("start"),
        _step("decide", "start", type="decision"),
        _step("plan", "decide", type="batchable"),
        _step("work", "plan", type="batch_worker", batch_config={"worker_template": "work"}),
        _step("sum", "work", type="deferred_convergence"),
    )
    plan = steps_for_decision(template, "decide", ["plan"], {"start", "decide"})
    assert plan.step_names == ("plan",)
    assert convergence_steps_for_worker_template(template, "work") == ["sum"]
    with pytest.raises(ValidationError, match="'work' is a batch_worker template"):
        steps_for_decision(template, "decide", ["work"], {"start", "decide"})


def test_decision_plan_errors() -> None:
    template = _load("refund_order")
    with pytest.raises(ValidationError, match="has no step named 'nope'"):
        steps_for_decision(template, "nope", [], set())
    with pytest.raises(ValidationError, match="is of type standard, not a decision step"):
        decision_graph_names(template, "auto_refund")
    with pytest.raises(ValidationError, match="'validate_refund' is not a descendant"):
        steps_for_decision(template, "choose_path", ["validate_refund"], set())
    with pytest.raises(ValidationError, match="'ghost' is not a descendant"):
        steps_for_decision(template, "choose_path", ["ghost"], set())
    with pytest.raises(ValidationError, match="step names are strings"):
        steps_for_decision(template, "choose_path", [{"x": 1}], set())  # type: ignore[list-item]
    terminal = _template(_step("a"), _step("d", "a", type="decision"))
    with pytest.raises(
        ValidationError, match="'d' has no downstream steps, but its outcome requested 'a'"
    ):
        steps_for_decision(terminal, "d", ["a"], set())
    assert steps_for_decision(terminal, "d", [], set()).step_names == ()


def test_convergence_steps_for_worker_template() -> None:
    template = _load("batch_csv")
    assert convergence_steps_for_worker_template(template, "process_csv_batch") == [
        "aggregate_csv_results"
    ]
    assert convergence_steps_for_worker_template(template, "analyze_csv") == []


@pytest.mark.parametrize(
    ("fixture", "expected"),
    [
        (
            "linear_workflow",
            {"linear_step_1": 0, "linear_step_2": 1, "linear_step_3": 2, "linear_step_4": 3},
        ),
        (
            "diamond_workflow",
            {"diamond_start": 0, "diamond_branch_b": 1, "diamond_branch_c": 1, "diamond_end": 2},
        ),
        (
            "tree_workflow",
            {
                "tree_root": 0,
                "tree_branch_left": 1,
                "tree_branch_right": 1,
                "tree_leaf_d": 2,
                "tree_leaf_e": 2,
                "tree_leaf_f": 2,
                "tree_leaf_g": 2,
                "tree_final_convergence": 3,
            },
        ),
        (
            "mixed_dag_workflow",
            {
                "dag_init": 0,
                "dag_process_left": 1,
                "dag_process_right": 1,
                "dag_validate": 2,
                "dag_transform": 2,
                "dag_analyze": 3,
                "dag_finalize": 4,
            },
        ),
    ],
)
def test_dependency_levels(fixture: str, expected: dict[str, int]) -> None:
    levels = dependency_levels(_load(fixture))
    assert levels == expected
    assert list(levels) == list(_load(fixture).step_names)


def test_dependency_levels_use_the_longest_path() -> None:
    template = _template(_step("c", "b", "a"), _step("a"), _step("b", "a"))
    assert dependency_levels(template) == {"c": 2, "a": 0, "b": 1}
