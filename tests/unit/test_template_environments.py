"""Environment overrides (`environments:` with step names and ALL) and context validation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tasker_shared.domain.template import (
    BackoffStrategy,
    RetryOverride,
    StepOverride,
    TaskTemplate,
    parse_template,
    template_from_json,
)
from tasker_shared.errors import ValidationError
from tasker_shared.templates_io import load_template_file

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "templates"


def _load(name: str) -> TaskTemplate:
    return load_template_file(FIXTURES / f"{name}.yaml")


def test_all_applies_to_every_step_and_keeps_unset_retry_fields() -> None:
    template = _load("refund_order")
    resolved = template.resolve_for_environment("test")
    assert {s.name: s.retry.max_attempts for s in resolved.steps} == dict.fromkeys(
        template.step_names, 1
    )
    # Only max_attempts is overridden: manual_review stays non-retryable.
    assert resolved.step("manual_review").retry.retryable is False
    assert resolved.step("validate_refund").retry.retryable is True
    assert template.step("validate_refund").retry.max_attempts == 3  # original untouched
    assert resolved.environments == template.environments


def test_named_overrides_apply_after_all_in_order() -> None:
    template = _load("reference_style_order_fulfillment")
    test = template.resolve_for_environment("test")
    assert {s.name: s.timeout_seconds for s in test.steps} == dict.fromkeys(template.step_names, 5)
    assert test.step("reserve_inventory").retry.max_attempts == 2
    assert test.step("reserve_inventory").retry.backoff is BackoffStrategy.FIBONACCI
    assert test.step("charge_payment").retry.max_attempts == 1

    dev = template.resolve_for_environment("development")
    charge = dev.step("charge_payment")
    assert charge.handler.initialization == {"gateway_url": "http://localhost:4010"}
    assert charge.timeout_seconds == 60
    assert dev.step("validate_order") == template.step("validate_order")


def test_initialization_is_merged_key_by_key() -> None:
    template = parse_template(
        {
            "name": "t",
            "namespace_name": "ns",
            "version": "1",
            "steps": [
                {
                    "name": "a",
                    "handler": {
                        "callable": "x",
                        "initialization": {"url": "https://prod", "size": 10},
                    },
                }
            ],
            "environments": {
                "dev": {
                    "steps": [
                        {"name": "ALL", "handler": {"initialization": {"url": "http://dev"}}},
                        {
                            "name": "a",
                            "retry": {
                                "retryable": False,
                                "backoff": "none",
                                "backoff_base_ms": 5,
                                "max_backoff_ms": 50,
                            },
                        },
                    ]
                },
                "empty": None,
            },
        }
    )
    resolved = template.resolve_for_environment("dev")
    step = resolved.step("a")
    assert step.handler.initialization == {"url": "http://dev", "size": 10}
    assert (step.retry.retryable, step.retry.max_attempts, step.retry.backoff) == (
        False,
        3,
        BackoffStrategy.NONE,
    )
    assert (step.retry.backoff_base_ms, step.retry.max_backoff_ms) == (5, 50)
    assert template.environments["dev"][1] == StepOverride(
        name="a",
        retry=RetryOverride(
            retryable=False, backoff=BackoffStrategy.NONE, backoff_base_ms=5, max_backoff_ms=50
        ),
    )
    assert template.resolve_for_environment("empty") is template
    assert template_from_json(template.to_json()) == template


def test_unknown_environment_is_a_no_op() -> None:
    template = _load("linear_workflow")
    assert template.resolve_for_environment("production") is template


def test_validate_context_accepts_good_context() -> None:
    _load("refund_order").validate_context({"order_id": "o-1", "amount": 12.5})
    _load("diamond_workflow").validate_context({"anything": object()})  # no input_schema


def test_validate_context_names_every_failing_path() -> None:
    template = _load("reference_style_order_fulfillment")
    context: dict[str, Any] = {
        "order_id": "",
        "customer_email": "not-an-email",
        "items": [{"sku": "a", "quantity": 0}, {"quantity": 1}],
    }
    with pytest.raises(ValidationError) as info:
        template.validate_context(context)
    error = info.value
    assert error.code == "validation_error"
    paths = [e["path"] for e in error.details["errors"]]
    assert paths == ["$.customer_email", "$.items[0].quantity", "$.items[1]", "$.order_id"]
    message = str(error)
    assert message.startswith(
        "context does not match the input_schema of template ecommerce_ref/order_fulfillment:1.4.0"
    )
    assert "$.items[0].quantity: 0 is less than the minimum of 1" in message
    assert "$.items[1]: 'sku' is a required property" in message
    assert "$.customer_email: 'not-an-email' is not a 'email'" in message


def test_validate_context_with_a_non_object() -> None:
    with pytest.raises(ValidationError, match=r"\$: 'nope' is not of type 'object'"):
        _load("refund_order").validate_context("nope")


def test_validate_context_caps_the_message() -> None:
    template = parse_template(
        {
            "name": "t",
            "namespace_name": "ns",
            "version": "1",
            "steps": [{"name": "a", "handler": {"callable": "x"}}],
            "input_schema": {"type": "array", "items": {"type": "string"}},
        }
    )
    with pytest.raises(ValidationError) as info:
        template.validate_context(list(range(25)))
    assert str(info.value).endswith("(and 5 more)")
    assert len(info.value.details["errors"]) == 25


def test_unresolvable_references_are_not_fetched() -> None:
    template = parse_template(
        {
            "name": "t",
            "namespace_name": "ns",
            "version": "1",
            "steps": [{"name": "a", "handler": {"callable": "x"}}],
            "input_schema": {"$ref": "https://example.invalid/schema.json"},
        }
    )
    with pytest.raises(ValidationError, match="cannot be applied: unresolvable reference"):
        template.validate_context({})


def test_compiled_validator_is_shared_between_copies() -> None:
    template = _load("refund_order")
    copy = template_from_json(template.to_json())
    template.validate_context({"order_id": "1", "amount": 1})
    template.validate_context({"order_id": "2", "amount": 2})
    copy.validate_context({"order_id": "1", "amount": 1})
    assert template._validator is copy._validator
