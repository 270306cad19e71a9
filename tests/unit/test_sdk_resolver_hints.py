"""A template's `handler.resolver` hint, with tasker-core's meaning: `explicit_mapping` looks
the callable up among registered handlers only, `class_lookup` imports its dotted path only,
no hint tries the registry then the import, and any other name is a handler that cannot be
found (clear error, also in the handler check) instead of a silently different handler."""

from __future__ import annotations

import pytest

from tasker_shared.domain.template.text import parse_template_text
from tasker_worker.runtime.handler_check import check_handlers
from tasker_worker.sdk import HandlerNotFound, HandlerRegistry, StepContext, StepResult, success

CTX = StepContext(task_uuid="t", step_uuid="s", correlation_id="c", step_name="step",
                  handler_name="h", namespace="ns", task_name="task", task_version="1")
IMPORTED = f"{__name__}.Imported"


class Imported:
    """What the dotted path names."""

    def call(self, context: StepContext) -> StepResult:
        return success({"from": "import"})

    def refund(self, context: StepContext) -> StepResult:
        return success({"from": "import", "method": "refund"})


class Registered:
    """What the registry maps the same name to."""

    def call(self, context: StepContext) -> StepResult:
        return success({"from": "registry"})


def run(registry: HandlerRegistry, method: str = "call", resolver: str | None = None) -> object:
    return registry.resolve(IMPORTED, method, resolver=resolver).invoke_sync(CTX).result


@pytest.fixture
def registry() -> HandlerRegistry:
    found = HandlerRegistry()
    found.register(IMPORTED, Registered)
    return found


def test_no_hint_tries_the_registry_first(registry: HandlerRegistry) -> None:
    assert run(registry) == {"from": "registry"}
    assert run(HandlerRegistry()) == {"from": "import"}


def test_explicit_mapping_uses_registered_handlers_only(registry: HandlerRegistry) -> None:
    assert run(registry, resolver="explicit_mapping") == {"from": "registry"}
    with pytest.raises(HandlerNotFound, match=r"not registered \(resolver explicit_mapping\)"):
        run(HandlerRegistry(), resolver="explicit_mapping")  # importable, yet not registered


def test_class_lookup_imports_the_dotted_path(registry: HandlerRegistry) -> None:
    assert run(registry, resolver="class_lookup") == {"from": "import"}
    assert run(registry, "refund", resolver="class_lookup") == {"from": "import",
                                                                 "method": "refund"}
    assert run(registry) == {"from": "registry"}  # cached per hint, not shared


def test_an_unknown_resolver_is_not_found(registry: HandlerRegistry) -> None:
    with pytest.raises(HandlerNotFound, match="unknown resolver 'payments_resolver'") as info:
        run(registry, resolver="payments_resolver")
    assert info.value.retryable is False
    assert "explicit_mapping or class_lookup" in str(info.value)


def test_the_handler_check_follows_the_hints(registry: HandlerRegistry) -> None:
    template = parse_template_text(f"""
name: hints
namespace_name: chk
version: "1.0.0"
steps:
  - {{name: plain, handler: {{callable: {IMPORTED}}}}}
  - {{name: mapped, handler: {{callable: {IMPORTED}, resolver: explicit_mapping}}}}
  - {{name: looked_up, handler: {{callable: {IMPORTED}, method: refund, resolver: class_lookup}}}}
  - {{name: custom, handler: {{callable: {IMPORTED}, resolver: payments_resolver}}}}
""", source="hints.yaml")
    report = check_handlers(registry, [template])
    assert [(p.step, p.reason) for p in report.missing] == [
        ("custom", "unknown resolver 'payments_resolver' (this worker resolves with "
                   "explicit_mapping or class_lookup)")]
