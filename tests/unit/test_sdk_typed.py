"""Typed handlers: which value each parameter gets, validation errors that name the field,
declared dependencies the step lacks, pydantic results, and signatures refused when the
handler is resolved."""

from __future__ import annotations

import asyncio
import functools
from typing import Annotated, Any

import pytest
import sniffio
import trio
from pydantic import BaseModel

from tasker_worker.runtime.aio import run_on_asyncio
from tasker_worker.sdk import (
    ConfigurationError,
    HandlerNotFound,
    HandlerRegistry,
    StepContext,
    StepHandler,
    ValidationError,
    dependency,
    step_handler,
    task_input,
)
from tasker_worker.sdk.results import failure_from_exception
from tests.integration.typed_handlers import Order


class Checked(BaseModel):
    ok: bool
    total: float


class Receipt(BaseModel):
    order_id: str
    charged: float


ORDER = {"order_id": "o-1", "items": [{"sku": "a", "qty": 2}]}


def _ctx(context: dict[str, Any] | None = None,
         deps: dict[str, Any] | None = None) -> StepContext:
    return StepContext(task_uuid="t", step_uuid="s", correlation_id="c", step_name="charge",
                       handler_name="orders.charge", namespace="n", task_name="orders",
                       task_version="1", task_context=ORDER if context is None else context,
                       dependency_results={"validate_order": {"result": {"ok": True,
                                                                          "total": 9.5}}}
                       if deps is None else deps)


def charge(ctx: StepContext, order: Order,
           check: Annotated[Checked, dependency("validate_order")]) -> Receipt:
    assert isinstance(ctx, StepContext)
    return Receipt(order_id=order.order_id, charged=check.total * order.items[0].qty)


async def charge_async(order: Order,
                       validate_order: Annotated[Checked, dependency()]) -> Receipt:
    # sniffio, not "is a Trio task running": under trio-asyncio an asyncio task runs inside
    # a Trio run, and a Trio checkpoint there is a bad yield for asyncio.
    if sniffio.current_async_library() == "trio":
        await trio.lowlevel.checkpoint()
    else:
        await asyncio.sleep(0)
    return Receipt(order_id=order.order_id, charged=validate_order.total)


def _resolve(func: object, name: str = "orders.charge") -> Any:
    registry = HandlerRegistry()
    registry.register(name, func)
    return registry.resolve(name)


def test_a_typed_sync_handler_gets_validated_models_and_returns_one() -> None:
    resolved = _resolve(charge)
    assert resolved.dependencies == ("validate_order",)
    result = resolved.invoke_sync(_ctx())
    assert result.success
    assert result.result == {"order_id": "o-1", "charged": 19.0}


async def test_a_typed_asyncio_handler() -> None:
    """Awaited the way the worker does it (its plain asyncio handler loop), not with
    asyncio.run, which follows the process's loop policy (trio-asyncio's once the gateway
    tests imported it)."""
    resolved = _resolve(charge_async)
    assert resolved.runtime == "asyncio"
    result = await run_on_asyncio(resolved.invoke_async(_ctx()))
    assert result.result == {"order_id": "o-1", "charged": 9.5}


async def test_a_typed_trio_handler() -> None:
    registry = HandlerRegistry()
    step_handler("orders.charge_trio", runtime="trio", registry=registry)(charge_async)
    resolved = registry.resolve("orders.charge_trio")
    assert resolved.runtime == "trio"
    assert (await resolved.invoke_async(_ctx())).result == {"order_id": "o-1", "charged": 9.5}


def test_an_invalid_task_context_names_each_field_and_is_not_retryable() -> None:
    resolved = _resolve(charge)
    bad = {"order_id": "o-1", "items": [{"sku": "a", "qty": 0}, {"qty": "many"}]}
    with pytest.raises(ValidationError) as caught:
        resolved.invoke_sync(_ctx(bad))
    message = str(caught.value)
    assert message.startswith("the task context does not match Order (parameter 'order'): ")
    assert "items.0.qty: Input should be greater than 0" in message
    assert "items.1.sku: Field required" in message
    assert "items.1.qty: Input should be a valid integer" in message
    assert [e["field"] for e in caught.value.context["errors"]] == [
        "items.0.qty", "items.1.sku", "items.1.qty"]
    failed = failure_from_exception(caught.value, traceback_lines=[])
    assert failed.retryable is False
    assert failed.error_type == "validation_error"


def test_an_invalid_dependency_result_names_the_dependency_and_field() -> None:
    resolved = _resolve(charge)
    with pytest.raises(ValidationError, match=r"the result of dependency 'validate_order' does "
                       r"not match Checked \(parameter 'check'\): total: Field required"):
        resolved.invoke_sync(_ctx(deps={"validate_order": {"result": {"ok": True}}}))


def test_a_declared_dependency_the_step_lacks_is_a_configuration_error() -> None:
    resolved = _resolve(charge)
    with pytest.raises(ConfigurationError, match=r"declares dependency 'validate_order' "
                       r"\(parameter 'check'\), but step 'charge' has no result from it "
                       r"\(available: other\)"):
        resolved.invoke_sync(_ctx(deps={"other": {"result": {}}}))


def test_an_optional_dependency_may_be_missing() -> None:
    def maybe(ctx: StepContext, check: Annotated[Checked | None, dependency("gone")]) -> dict[
            str, Any]:
        return {"check": check}

    assert _resolve(maybe).invoke_sync(_ctx()).result == {"check": None}


def test_task_input_marks_a_non_model_type_and_extras_are_left_to_defaults() -> None:
    def counted(ctx: StepContext, data: Annotated[dict[str, int], task_input()],
                scale: int = 3) -> dict[str, Any]:
        return {"total": sum(data.values()) * scale}

    assert _resolve(counted).invoke_sync(_ctx({"a": 1, "b": "2"})).result == {"total": 9}
    with pytest.raises(ValidationError, match=r"b: Input should be a valid integer"):
        _resolve(counted).invoke_sync(_ctx({"a": 1, "b": "two"}))


def test_plain_handlers_keep_the_plain_call() -> None:
    def plain(ctx):  # type: ignore[no-untyped-def]
        return {"step": ctx.step_name}

    def with_default(ctx: Any, limit: int = 5) -> dict[str, Any]:
        return {"limit": limit}

    assert _resolve(plain).signature is None
    assert _resolve(plain).invoke_sync(_ctx()).result == {"step": "charge"}
    assert _resolve(with_default).signature is None
    assert _resolve(functools.partial(with_default, limit=7)).invoke_sync(_ctx()).result == {
        "limit": 7}


def test_a_class_handler_method_may_be_typed() -> None:
    class Charge(StepHandler, register=False):
        def call(self, context: StepContext, order: Order) -> Receipt:  # type: ignore[override]
            return Receipt(order_id=order.order_id, charged=1.0)

    assert _resolve(Charge).invoke_sync(_ctx()).result == {"order_id": "o-1", "charged": 1.0}


def test_signatures_the_sdk_cannot_serve_are_refused_when_resolved() -> None:
    def two_inputs(ctx: StepContext, a: Order, b: Order) -> None: ...
    def unknown(ctx: StepContext, what: int) -> None: ...
    def two_marks(ctx: StepContext,
                  x: Annotated[Order, dependency("a"), dependency("b")]) -> None: ...

    with pytest.raises(HandlerNotFound, match="parameters a, b all take the task context"):
        _resolve(two_inputs)
    with pytest.raises(HandlerNotFound, match="parameter 'what' is neither the StepContext"):
        _resolve(unknown)
    with pytest.raises(HandlerNotFound, match="more than one dependency"):
        _resolve(two_marks)
    with pytest.raises(ValueError, match="a non-empty string"):
        dependency("")
