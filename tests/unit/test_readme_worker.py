"""The handler examples of the README's "Writing a worker" section run as written: the
asyncio one does real HTTP I/O with httpx, the typed one validates its inputs and reports
progress, the sync ones return what the text says."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest

from tasker_worker.sdk import HandlerRegistry, StepContext, ValidationError, default_registry
from tests.integration import test_asyncio_handlers

http_server = test_asyncio_handlers.http_server  # a local HTTP server (fixture): /echo?k=v

README = Path(__file__).resolve().parents[2] / "README.md"


def _section_code() -> list[str]:
    text = README.read_text()
    section = text.split("\n## Writing a worker\n", 1)[1]
    section = re.split(r"\n#{2,3} ", section, maxsplit=1)[0]  # up to the next heading
    return re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)


@pytest.fixture(scope="module")
def registry() -> HandlerRegistry:
    """The section's handlers, registered by running its code blocks as a module would."""
    blocks = _section_code()
    assert len(blocks) >= 3
    for i, block in enumerate(blocks):
        exec(compile(block, f"README.md (block {i})", "exec"), {"__name__": f"readme_{i}"})
    return default_registry


def _ctx(**fields: Any) -> StepContext:
    return StepContext(task_uuid="t", step_uuid="s", correlation_id="c", step_name="step",
                       handler_name="h", namespace="n", task_name="task", task_version="1",
                       **fields)


def test_the_asyncio_example_fetches_with_httpx(registry: HandlerRegistry,
                                                http_server: str) -> None:
    reserve = registry.resolve("inventory.reserve")
    assert reserve.runtime == "asyncio"
    ctx = _ctx(step_config={"stock_url": f"{http_server}/echo?n=4",  # answers {"n": "4"}
                            "price_url": f"{http_server}/echo?eur=12.5"})
    assert asyncio.run(reserve.invoke_async(ctx)).result == {"in_stock": "4", "price": "12.5"}
    assert registry.resolve("reports.build").runtime == "trio"


def test_the_sync_examples(registry: HandlerRegistry) -> None:
    charge = registry.resolve("payments.charge")
    ok = _ctx(dependency_results={"validate_order": {"result": {"amount": 20}}})
    assert charge.invoke_sync(ok).result == {"charged": 20}
    bad = _ctx(dependency_results={"validate_order": {"result": {"amount": 0}}})
    assert charge.invoke_sync(bad).retryable is False
    copy = registry.resolve("files.copy")
    assert copy.invoke_sync(_ctx(task_context={"chunks": [1, 2]})).success


def test_the_typed_example_validates_and_reports_progress(registry: HandlerRegistry) -> None:
    capture = registry.resolve("payments.capture")
    assert capture.dependencies == ("validate_order",)
    approved = {"validate_order": {"result": {"approved": True}}}
    ctx = _ctx(task_context={"order_id": "o-1", "amount": 9.5}, dependency_results=approved)
    assert asyncio.run(capture.invoke_async(ctx)).result == {"order_id": "o-1", "charged": 9.5}
    ctx = _ctx(task_context={"order_id": "o-1"}, dependency_results=approved)
    with pytest.raises(ValidationError, match=re.escape(
            "the task context does not match Order (parameter 'order'): amount: Field "
            "required")):
        asyncio.run(capture.invoke_async(ctx))
