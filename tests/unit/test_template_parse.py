"""Unit tests for parsing task templates: fixtures, fields, defaults, warnings, JSON round trip."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tasker_shared.domain.template import (
    BackoffStrategy,
    DeliveryMode,
    EventCondition,
    FailureStrategy,
    IdentityStrategy,
    RetryPolicy,
    StalenessAction,
    StepType,
    parse_template,
    template_from_json,
)
from tasker_shared.errors import TemplateError, ValidationError
from tasker_shared.templates_io import load_template_file

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "templates"
VALID = sorted(FIXTURES.glob("*.yaml"))


def _minimal(**top: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "t",
        "namespace_name": "ns",
        "version": "1.0.0",
        "steps": [{"name": "a", "handler": {"callable": "x.A"}}],
    }
    data.update(top)
    return data


def _step(**fields: Any) -> dict[str, Any]:
    step: dict[str, Any] = {"name": "a", "handler": {"callable": "x.A"}}
    step.update(fields)
    return step


def _problems(data: object) -> list[str]:
    with pytest.raises(TemplateError) as info:
        parse_template(data, source="t.yaml")
    return info.value.problems


def test_there_are_enough_fixtures() -> None:
    assert len(VALID) >= 9


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.name)
def test_every_fixture_loads_and_round_trips(path: Path) -> None:
    template = load_template_file(path)
    data = template.to_json()
    assert json.loads(json.dumps(data)) == data
    again = template_from_json(data)
    assert again == template
    assert again.to_json() == data
    assert again.warnings == ()


def test_step_counts_of_the_fixtures() -> None:
    counts = {p.stem: len(load_template_file(p).steps) for p in VALID}
    assert counts["linear_workflow"] == 4
    assert counts["diamond_workflow"] == 4
    assert counts["tree_workflow"] == 8
    assert counts["mixed_dag_workflow"] == 7
    assert counts["conditional_approval"] == 6


def test_reference_style_template_reads_every_field() -> None:
    t = load_template_file(FIXTURES / "reference_style_order_fulfillment.yaml")
    assert (t.namespace, t.name, t.version) == ("ecommerce_ref", "order_fulfillment", "1.4.0")
    assert t.key == "ecommerce_ref/order_fulfillment:1.4.0"
    assert t.identity_strategy is IdentityStrategy.CALLER_PROVIDED
    assert t.metadata is not None
    assert t.metadata.author == "fulfillment-team"
    assert t.metadata.created_at == "2025-12-16T00:00:00+00:00"
    assert t.metadata.updated_at == "2025-12-18T10:30:00Z"
    assert t.metadata.documentation_url is None
    assert t.system_dependencies.primary == "order_db"
    assert t.system_dependencies.secondary == ("payment_gateway", "warehouse_api")
    assert [e.name for e in t.domain_events] == ["order.fulfilled"]
    assert t.lifecycle is not None
    assert t.lifecycle.max_duration_minutes == 120
    assert t.lifecycle.max_steps_in_process_minutes == 45
    assert t.lifecycle.staleness_action is StalenessAction.ERROR
    assert t.lifecycle.auto_fail_on_timeout is True
    assert t.lifecycle.auto_dlq_on_timeout is False
    assert t.step_names == ("validate_order", "reserve_inventory", "charge_payment", "ship_order")

    validate = t.step("validate_order")
    assert validate.step_type is StepType.STANDARD
    assert validate.handler.method == "validate"
    assert validate.handler.uses_method_dispatch
    assert validate.handler.resolver == "explicit_mapping"
    assert validate.handler.initialization == {"max_items": 50, "regions": ["eu", "us"]}
    assert validate.system_dependency is None
    assert validate.dependencies == ()
    # `limit` is legacy and ignored: max_attempts keeps its default.
    assert validate.retry == RetryPolicy(
        retryable=True,
        max_attempts=3,
        backoff=BackoffStrategy.LINEAR,
        backoff_base_ms=500,
        max_backoff_ms=10000,
    )
    assert validate.timeout_seconds == 30
    (event,) = validate.publishes_events
    assert event.condition is EventCondition.SUCCESS
    assert event.delivery_mode is DeliveryMode.FAST
    assert event.schema["required"] == ["order_id"]

    reserve = t.step("reserve_inventory")
    assert reserve.dependencies == ("validate_order",)
    assert reserve.retry.max_attempts == 4
    assert reserve.retry.backoff is BackoffStrategy.FIBONACCI
    (failed,) = reserve.publishes_events
    assert failed.condition is EventCondition.PERMANENT_FAILURE
    assert failed.publisher == "ecommerce_ref.publishers.InventoryPublisher"

    charge = t.step("charge_payment")
    assert charge.retry.retryable is False
    assert charge.retry.backoff is BackoffStrategy.NONE
    assert charge.result_schema["required"] == ["transaction_id"]
    ship = t.step("ship_order")
    assert ship.composition == {"grammar": "ship_v1", "stages": ["pick", "pack", "label"]}
    assert ship.publishes_events[0].delivery_mode is DeliveryMode.BROADCAST

    joined = "\n".join(t.warnings)
    assert "legacy key 'task_handler' ignored" in joined
    assert "step 'validate_order': legacy key 'retry.limit' ignored" in joined
    assert "unknown key 'metadata.notes' ignored" in joined


def test_batch_fixture_reads_batch_config() -> None:
    t = load_template_file(FIXTURES / "batch_csv.yaml")
    worker = t.step("process_csv_batch")
    assert worker.is_batch_worker
    assert not worker.created_at_initialization
    assert worker.batch_config is not None
    assert worker.batch_config.batch_size == 200
    assert worker.batch_config.parallelism == 5
    assert worker.batch_config.cursor_field == "row_number"
    assert worker.batch_config.worker_template == "process_csv_batch"
    assert worker.batch_config.failure_strategy is FailureStrategy.CONTINUE_ON_FAILURE
    assert t.step("analyze_csv").is_batchable
    assert t.step("aggregate_csv_results").is_deferred_convergence


def test_defaults_of_a_minimal_template() -> None:
    t = parse_template(_minimal())
    step = t.step("a")
    assert step.step_type is StepType.STANDARD
    assert step.handler.method == "call"
    assert not step.handler.uses_method_dispatch
    assert step.handler.initialization == {}
    assert step.retry == RetryPolicy()
    assert (step.retry.max_attempts, step.retry.backoff_base_ms) == (3, 1000)
    assert step.retry.max_backoff_ms == 30000
    assert step.retry.backoff is BackoffStrategy.EXPONENTIAL
    assert t.identity_strategy is IdentityStrategy.STRICT
    assert t.system_dependencies.primary == "default"
    assert t.lifecycle is None
    assert t.metadata is None
    assert t.input_schema is None
    assert t.environments == {}
    assert t.warnings == ()
    assert t.source == "<template>"


def test_batch_config_defaults() -> None:
    t = parse_template(
        _minimal(
            steps=[
                _step(name="plan", type="batchable"),
                _step(
                    name="work",
                    type="batch_worker",
                    dependencies=["plan"],
                    batch_config={"worker_template": "work"},
                ),
                _step(name="sum", type="deferred_convergence", dependencies=["work"]),
            ]
        )
    )
    config = t.step("work").batch_config
    assert config is not None
    assert (config.batch_size, config.parallelism, config.cursor_field) == (1000, 10, "id")
    assert config.failure_strategy is FailureStrategy.CONTINUE_ON_FAILURE


def test_lifecycle_defaults() -> None:
    t = parse_template(_minimal(lifecycle={"max_waiting_for_retry_minutes": 10}))
    assert t.lifecycle is not None
    assert t.lifecycle.staleness_action is StalenessAction.DLQ
    assert t.lifecycle.max_waiting_for_retry_minutes == 10
    assert t.lifecycle.max_duration_minutes is None
    assert t.to_json()["lifecycle"]["staleness_action"] == "dlq"


def test_step_lookup() -> None:
    t = parse_template(_minimal())
    assert t.has_step("a")
    assert not t.has_step("b")
    assert t.get_step("b") is None
    with pytest.raises(KeyError, match="has no step named 'b'"):
        t.step("b")


def test_aliases_are_accepted() -> None:
    t = parse_template(
        _minimal(steps=[_step(name="a"), _step(name="b", depends_on=["a"], step_type="standard")])
    )
    assert t.step("b").dependencies == ("a",)


def test_alias_given_twice_with_same_value_warns() -> None:
    t = parse_template(
        _minimal(
            steps=[
                _step(name="a"),
                _step(
                    name="b",
                    dependencies=["a"],
                    depends_on=["a"],
                    type="standard",
                    step_type="standard",
                ),
            ]
        )
    )
    assert any("'depends_on' ignored" in w for w in t.warnings)
    assert any("'step_type' ignored" in w for w in t.warnings)


def test_alias_given_twice_with_different_values_is_a_problem() -> None:
    problems = _problems(_minimal(steps=[_step(type="standard", step_type="decision")]))
    assert problems == [
        "t.yaml: step 'a': type and its alias 'step_type' are both given and differ; give only one"
    ]


def test_duplicate_dependency_entries_are_dropped_with_a_warning() -> None:
    t = parse_template(_minimal(steps=[_step(name="a"), _step(name="b", dependencies=["a", "a"])]))
    assert t.step("b").dependencies == ("a",)
    assert any("lists a step more than once" in w for w in t.warnings)


def test_unknown_keys_are_warned_not_rejected() -> None:
    t = parse_template(
        _minimal(
            flavour="vanilla",
            steps=[_step(colour="red", handler={"callable": "x.A", "extra": 1})],
            lifecycle={"max_retries": 3},
            system_dependencies={"primary": "db", "tertiary": []},
            environments={"test": {"steps": [{"name": "a", "wat": 1}], "other": 2}},
        )
    )
    joined = "\n".join(t.warnings)
    for key in (
        "flavour",
        "colour",
        "handler.extra",
        "lifecycle.max_retries",
        "system_dependencies.tertiary",
        "wat",
        "environments.test.other",
    ):
        assert f"unknown key '{key}' ignored" in joined
    assert t.warnings[0].startswith("<template>: ")


def test_non_string_keys_are_warned() -> None:
    t = parse_template({**_minimal(), 7: "seven"})
    assert t.warnings == ("<template>: unknown key 7 ignored",)


def test_to_json_layout_and_copies() -> None:
    t = load_template_file(FIXTURES / "refund_order.yaml")
    data = t.to_json()
    assert list(data) == [
        "name",
        "namespace_name",
        "version",
        "description",
        "identity_strategy",
        "metadata",
        "system_dependencies",
        "domain_events",
        "input_schema",
        "lifecycle",
        "steps",
        "environments",
    ]
    step = data["steps"][0]
    assert step["type"] == "standard"
    assert step["handler"] == {
        "callable": "refunds.handlers.ValidateRefund",
        "method": "call",
        "resolver": None,
        "initialization": {"strict": True},
    }
    assert step["retry"] == {
        "retryable": True,
        "max_attempts": 3,
        "backoff": "exponential",
        "backoff_base_ms": 1000,
        "max_backoff_ms": 30000,
    }
    assert "result_schema" not in step
    assert "composition" not in step
    assert data["lifecycle"]["max_steps_in_process_minutes"] == 20
    assert data["environments"] == {
        "test": {"steps": [{"name": "ALL", "retry": {"max_attempts": 1}}]}
    }
    data["steps"][0]["handler"]["initialization"]["strict"] = False
    assert t.step("validate_refund").handler.initialization == {"strict": True}


def test_from_json_accepts_the_db_copy_without_rechecking_the_schema() -> None:
    t = load_template_file(FIXTURES / "conditional_approval.yaml")
    data = t.to_json()
    data["input_schema"] = {"type": "objekt"}
    # The stored copy is trusted; parse_template would reject it.
    assert template_from_json(data).input_schema == {"type": "objekt"}
    with pytest.raises(TemplateError, match="is not a valid JSON Schema"):
        parse_template(data)


def test_from_json_still_rejects_broken_structure() -> None:
    with pytest.raises(TemplateError) as info:
        template_from_json({"name": "x"}, source="named_tasks row 7")
    assert all(p.startswith("named_tasks row 7: ") for p in info.value.problems)


def test_template_error_is_a_validation_error_with_all_problems() -> None:
    with pytest.raises(ValidationError) as info:
        parse_template({"name": 5}, source="bad.yaml")
    error = info.value
    assert isinstance(error, TemplateError)
    assert error.code == "template_invalid"
    assert error.details["problems"] == error.problems
    assert len(error.problems) == 4
    assert "invalid task template bad.yaml (4 problems)" in str(error)
    for problem in error.problems:
        assert problem in str(error)


def test_one_problem_message_is_singular() -> None:
    with pytest.raises(TemplateError, match=r"\(1 problem\):"):
        parse_template(_minimal(name=""))


def test_non_mapping_documents() -> None:
    assert _problems([1, 2]) == [
        "t.yaml: a task template must be a mapping, but the document is a list"
    ]


def test_max_attempts_zero_is_kept_as_tasker_core_has_it() -> None:
    """0 stays 0 (not the default 3), in a step and in an environment override, and
    survives the stored JSON form (tasker-core: the first attempt runs, never a retry)."""
    t = parse_template(_minimal(
        steps=[{"name": "a", "handler": {"callable": "x.A"}, "retry": {"max_attempts": 0}},
               {"name": "b", "handler": {"callable": "x.B"}}],
        environments={"test": {"steps": [{"name": "b", "retry": {"max_attempts": 0}}]}}))
    assert t.step("a").retry.max_attempts == 0
    assert t.step("b").retry.max_attempts == 3
    assert t.resolve_for_environment("test").step("b").retry.max_attempts == 0
    assert template_from_json(t.to_json()).step("a").retry.max_attempts == 0
