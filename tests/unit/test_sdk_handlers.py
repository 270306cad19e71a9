"""Unit tests for tasker_worker.sdk.handlers: registration, resolution and invocation."""

from __future__ import annotations

import functools
import inspect
import itertools
import re
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tasker_worker.sdk import (
    HandlerNotFound,
    HandlerRegistry,
    ResolvedHandler,
    StepContext,
    StepHandler,
    StepResult,
    coerce_result,
    default_registry,
    resolve,
    step_handler,
    success,
)
from tasker_worker.sdk import handlers as handlers_module

CTX = StepContext(
    task_uuid="t",
    step_uuid="s",
    correlation_id="c",
    step_name="step",
    handler_name="h",
    namespace="ns",
    task_name="task",
    task_version="1",
    task_context={"n": 2},
)

_counter = itertools.count()


def _package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str) -> str:
    """Write `source` as `<unique package>/mod.py` on sys.path; return the package name."""
    name = f"sdk_handlers_pkg_{next(_counter)}"
    package = tmp_path / name
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "mod.py").write_text(textwrap.dedent(source))
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


def double(context: StepContext) -> dict[str, Any]:
    return {"n": context.get_input("n") * 2}


async def adouble(context: StepContext) -> StepResult:
    return success({"n": context.get_input("n") * 2})


class TestCoerce:
    def test_values(self) -> None:
        result = success({"a": 1})
        assert coerce_result(result) is result
        assert coerce_result(None) == success()
        assert coerce_result({"a": 1}) == success({"a": 1})

    def test_rejects_other(self) -> None:
        with pytest.raises(TypeError, match="not list"):
            coerce_result([1])


class TestRegistry:
    def test_register_and_lookup(self) -> None:
        registry = HandlerRegistry()
        registry.register("double", double)
        assert "double" in registry
        assert len(registry) == 1
        assert registry.get("double") is double
        assert registry.get("nope") is None
        assert registry.names() == ["double"]
        registry.unregister("double")
        registry.unregister("double")
        assert "double" not in registry

    def test_conflicts(self) -> None:
        registry = HandlerRegistry()
        registry.register("h", double)
        registry.register("h", double)  # same object: fine
        with pytest.raises(ValueError, match="already registered"):
            registry.register("h", adouble)
        registry.register("h", adouble, replace=True)
        assert registry.get("h") is adouble

    def test_redefinition_of_same_qualname_allowed(self) -> None:
        registry = HandlerRegistry()

        def make() -> Any:
            def handler(context: StepContext) -> None:
                return None

            return handler

        registry.register("h", make())
        registry.register("h", make())

    def test_empty_name(self) -> None:
        with pytest.raises(ValueError, match="empty"):
            HandlerRegistry().register("", double)

    def test_decorator(self) -> None:
        registry = HandlerRegistry()

        @step_handler("deco", registry=registry)
        def handler(context: StepContext) -> None:
            return None

        assert registry.get("deco") is handler
        assert registry.resolve("deco").invoke_sync(CTX) == success()

    def test_decorator_default_registry(self) -> None:
        @step_handler("tests.sdk.default_deco")
        def handler(context: StepContext) -> dict[str, Any]:
            return {"ok": True}

        try:
            assert resolve("tests.sdk.default_deco").invoke_sync(CTX).result == {"ok": True}
        finally:
            default_registry.unregister("tests.sdk.default_deco")


class TestInvoke:
    def test_sync_function(self) -> None:
        registry = HandlerRegistry()
        registry.register("double", double)
        handler = registry.resolve("double")
        assert handler == ResolvedHandler(
            callable_name="double", method="call", func=double, is_async=False
        )
        assert handler.invoke(CTX) == success({"n": 4})
        assert registry.resolve("double") is handler  # cached

    async def test_async_function(self) -> None:
        registry = HandlerRegistry()
        registry.register("adouble", adouble)
        handler = registry.resolve("adouble")
        assert handler.is_async
        pending = handler.invoke(CTX)
        assert inspect.isawaitable(pending)
        assert await pending == success({"n": 4})
        with pytest.raises(TypeError, match="is async"):
            handler.invoke_sync(CTX)

    async def test_invoke_async_on_sync_handler(self) -> None:
        registry = HandlerRegistry()
        registry.register("double", double)
        assert await registry.resolve("double").invoke_async(CTX) == success({"n": 4})

    async def test_partial_and_callable_object(self) -> None:
        class AsyncCallable:
            async def __call__(self, context: StepContext) -> None:
                return None

        registry = HandlerRegistry()
        registry.register("partial", functools.partial(adouble))
        registry.register("object", AsyncCallable())
        assert registry.resolve("partial").is_async
        obj = registry.resolve("object")
        assert obj.is_async
        assert await obj.invoke_async(CTX) == success()

    async def test_sync_returning_awaitable(self) -> None:
        def sneaky(context: StepContext) -> Any:
            return adouble(context)

        class AwaitableThing:
            def __await__(self) -> Any:
                return iter(())

        registry = HandlerRegistry()
        registry.register("sneaky", sneaky)
        registry.register("thing", lambda context: AwaitableThing())
        with pytest.raises(TypeError, match="returned an awaitable"):
            registry.resolve("sneaky").invoke_sync(CTX)
        with pytest.raises(TypeError, match="returned an awaitable"):
            registry.resolve("thing").invoke_sync(CTX)
        assert await registry.resolve("sneaky").invoke_async(CTX) == success({"n": 4})

    def test_bad_return_value(self) -> None:
        registry = HandlerRegistry()
        registry.register("bad", lambda context: 42)
        with pytest.raises(TypeError, match="not int"):
            registry.resolve("bad").invoke_sync(CTX)

    def test_function_has_no_other_method(self) -> None:
        registry = HandlerRegistry()
        registry.register("double", double)
        with pytest.raises(HandlerNotFound, match="no method 'run'"):
            registry.resolve("double", "run")


class Greeter(StepHandler, register=False):
    handler_name = "tests.sdk.greeter"
    created = 0

    def __init__(self) -> None:
        type(self).created += 1

    def call(self, context: StepContext) -> StepResult:
        return self.success({"hello": context.namespace}, metadata={"m": 1})

    async def shout(self, context: StepContext) -> StepResult:
        return self.failure("LOUD", retryable=False, error_code="E1")


class AutoRegistered(StepHandler):
    handler_name = "tests.sdk.auto_registered"

    def call(self, context: StepContext) -> None:
        return None


class Abstract(StepHandler):
    """No handler_name: not registered."""


class NeedsArgs(StepHandler, register=False):
    handler_name = "tests.sdk.needs_args"

    def __init__(self, dependency: object) -> None:
        self.dependency = dependency


class TestClassHandlers:
    def test_auto_registration(self) -> None:
        assert default_registry.get("tests.sdk.auto_registered") is AutoRegistered
        assert "tests.sdk.greeter" not in default_registry
        assert Abstract not in [default_registry.get(n) for n in default_registry.names()]
        assert resolve("tests.sdk.auto_registered").invoke_sync(CTX) == success()

    def test_conflicting_subclass_rejected(self) -> None:
        with pytest.raises(ValueError, match="already registered"):

            class Clash(StepHandler):
                handler_name = "tests.sdk.auto_registered"

    async def test_instance_created_once_and_methods(self) -> None:
        registry = HandlerRegistry()
        registry.register("greeter", Greeter)
        before = Greeter.created
        call = registry.resolve("greeter")
        shout = registry.resolve("greeter", "shout")
        assert Greeter.created == before + 1
        assert not call.is_async
        assert shout.is_async
        assert call.invoke_sync(CTX) == success({"hello": "ns"}, metadata={"m": 1})
        result = await shout.invoke_async(CTX)
        assert result.error_message == "LOUD"
        assert result.retryable is False
        assert result.error_code == "E1"

    def test_missing_method(self) -> None:
        registry = HandlerRegistry()
        registry.register("greeter", Greeter)
        with pytest.raises(HandlerNotFound, match="no callable 'nope'") as info:
            registry.resolve("greeter", "nope")
        assert info.value.callable_name == "greeter"
        assert info.value.retryable is False

    def test_uninstantiable(self) -> None:
        registry = HandlerRegistry()
        registry.register("needs", NeedsArgs)
        with pytest.raises(HandlerNotFound, match="cannot instantiate NeedsArgs"):
            registry.resolve("needs")

    def test_base_call_not_implemented(self) -> None:
        with pytest.raises(NotImplementedError, match="must implement call"):
            Abstract().call(CTX)

    def test_registered_instance_and_plain_object(self) -> None:
        class Plain:
            def call(self, context: StepContext) -> dict[str, int]:
                return {"plain": 1}

        registry = HandlerRegistry()
        registry.register("instance", Greeter())
        registry.register("plain", Plain())
        registry.register("none", object())
        assert registry.resolve("instance").invoke_sync(CTX).result == {"hello": "ns"}
        assert registry.resolve("plain").invoke_sync(CTX).result == {"plain": 1}
        with pytest.raises(HandlerNotFound, match="no callable 'call'"):
            registry.resolve("none")

    def test_result_helpers(self) -> None:
        h = Greeter()
        assert h.checkpoint(5, 5).is_checkpoint
        assert h.decision(["a"]).result["decision_point_outcome"]["step_names"] == ["a"]
        assert h.no_branches().result["decision_point_outcome"] == {"type": "no_branches"}
        configs = [{"batch_id": "001", "start_cursor": 0, "end_cursor": 1, "batch_size": 1}]
        outcome = h.batches(configs, worker_template_name="w", total_items=1).result
        assert outcome["batch_processing_outcome"]["worker_count"] == 1
        assert h.no_batches().result["batch_processing_outcome"] == {"type": "no_batches"}
        full = h.failure(
            "x",
            error_type="permanent_error",
            status_code=429,
            context={"a": 1},
            retry_after=3,
            backoff_hint_seconds=3,
            metadata={"b": 2},
        )
        assert full.retry_after == "3"
        assert full.error_context == {"a": 1}
        assert full.metadata == {"b": 2}


MODULE_SOURCE = """
    from tasker_worker.sdk import StepHandler, success

    def func(context):
        return {"from": "func"}

    async def afunc(context):
        return success({"from": "afunc"})

    class Handler(StepHandler, register=False):
        def call(self, context):
            return {"from": "class"}

        def other(self, context):
            return {"from": "other"}

        class Inner:
            def call(self, context):
                return {"from": "inner"}

    def call(context):
        return {"from": "module"}

    NOT_CALLABLE = 3
"""


class TestDottedPaths:
    def test_function_class_and_method(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        pkg = _package(tmp_path, monkeypatch, MODULE_SOURCE)
        registry = HandlerRegistry()
        assert registry.resolve(f"{pkg}.mod.func").invoke_sync(CTX).result == {"from": "func"}
        assert registry.resolve(f"{pkg}.mod.afunc").is_async
        assert registry.resolve(f"{pkg}.mod.Handler").invoke_sync(CTX).result == {"from": "class"}
        other = registry.resolve(f"{pkg}.mod.Handler", "other")
        assert other.invoke_sync(CTX).result == {"from": "other"}
        inner = registry.resolve(f"{pkg}.mod.Handler.Inner")
        assert inner.invoke_sync(CTX).result == {"from": "inner"}
        module = registry.resolve(f"{pkg}.mod")
        assert module.invoke_sync(CTX).result == {"from": "module"}

    def test_registry_wins_over_import(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        pkg = _package(tmp_path, monkeypatch, MODULE_SOURCE)
        registry = HandlerRegistry()
        registry.register(f"{pkg}.mod.func", double)
        assert registry.resolve(f"{pkg}.mod.func").func is double

    def test_missing_pieces(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        pkg = _package(tmp_path, monkeypatch, MODULE_SOURCE)
        registry = HandlerRegistry()
        with pytest.raises(HandlerNotFound, match="has no 'Missing'"):
            registry.resolve(f"{pkg}.mod.Missing")
        with pytest.raises(HandlerNotFound, match=f"{pkg} has no 'nomod'"):
            registry.resolve(f"{pkg}.nomod.Thing")
        with pytest.raises(HandlerNotFound, match="no module 'no_such_pkg_xyz'"):
            registry.resolve("no_such_pkg_xyz.mod.Thing")
        with pytest.raises(HandlerNotFound, match="no callable 'call'"):
            registry.resolve(f"{pkg}.mod.NOT_CALLABLE")

    @pytest.mark.parametrize("name", ["single", "bad path.x", "a..b", ""])
    def test_not_a_path(self, name: str) -> None:
        with pytest.raises(HandlerNotFound, match="not a dotted import path") as info:
            HandlerRegistry().resolve(name)
        assert info.value.callable_name == name

    def test_broken_module(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        broken = _package(tmp_path, monkeypatch, "raise RuntimeError('kaboom')\n")
        with pytest.raises(HandlerNotFound, match=r"importing .* failed: RuntimeError") as info:
            HandlerRegistry().resolve(f"{broken}.mod.Thing")
        assert isinstance(info.value.__cause__, RuntimeError)

    def test_module_missing_dependency(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        pkg = _package(tmp_path, monkeypatch, "import not_installed_dependency_xyz\n")
        with pytest.raises(HandlerNotFound, match="not_installed_dependency_xyz") as info:
            HandlerRegistry().resolve(f"{pkg}.mod.Thing")
        assert isinstance(info.value.__cause__, ModuleNotFoundError)

    def test_module_level_resolve_uses_default(self) -> None:
        handler = resolve("tasker_worker.sdk.handlers.coerce_result")
        assert handler.invoke_sync(None) == success()  # type: ignore[arg-type]
        assert handler is resolve("tasker_worker.sdk.handlers.coerce_result")


def test_module_is_free_of_trio() -> None:
    """The SDK names Trio as a runtime but never imports it (nor trio-asyncio)."""
    source = Path(handlers_module.__file__).read_text()
    assert not re.search(r"^\s*(import|from)\s+trio", source, re.MULTILINE)
