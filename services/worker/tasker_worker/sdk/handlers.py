"""Handler registration and resolution: `@step_handler`, `StepHandler` classes, dotted paths.

Where a handler runs:
- a plain function or method runs in a worker thread;
- an `async def` handler runs on the worker's asyncio event loop (the default: asyncio
  libraries such as httpx, aiohttp or asyncpg just work; cancellation arrives as
  `asyncio.CancelledError` at the next await);
- an `async def` handler marked for Trio — `@step_handler("x", runtime="trio")`,
  `@trio_handler` on a function named by a dotted path, or `runtime = "trio"` on a
  `StepHandler` subclass — runs under the worker's Trio loop (cancellation arrives as
  `trio.Cancelled`).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, TypeAlias, TypeVar

from pydantic import BaseModel

from tasker_worker.sdk import results
from tasker_worker.sdk.context import StepContext
from tasker_worker.sdk.errors import HandlerNotFound
from tasker_worker.sdk.imports import import_target
from tasker_worker.sdk.results import StepResult
from tasker_worker.sdk.runtimes import (
    HandlerRuntime,
    check_runtime,
    mark,
    runtime_of,
    trio_handler,
)
from tasker_worker.sdk.typed import TypedSignature, signature_of

__all__ = [
    "HandlerNotFound",
    "HandlerRegistry",
    "HandlerReturn",
    "HandlerRuntime",
    "ResolvedHandler",
    "StepHandler",
    "coerce_result",
    "default_registry",
    "resolve",
    "step_handler",
    "trio_handler",
]

HandlerReturn: TypeAlias = StepResult | Mapping[str, Any] | BaseModel | None
"""What a handler may return: a StepResult, a plain mapping or a pydantic model (→ success
with its JSON) or None (→ success {})."""

F = TypeVar("F", bound=Callable[..., Any])

RESOLVERS = (None, "explicit_mapping", "class_lookup")
"""A template's `handler.resolver` hints this worker follows (None: the registry, then the
import), by tasker-core's names."""


def coerce_result(value: object) -> StepResult:
    """Turn a handler's return value into a StepResult; TypeError for anything else."""
    if isinstance(value, StepResult):
        return value
    if value is None:
        return results.success()
    if isinstance(value, Mapping):
        return results.success(value)
    if isinstance(value, BaseModel):
        return results.success(value.model_dump(mode="json"))
    raise TypeError(
        "a handler must return a StepResult, a dict, a pydantic model or None, not "
        f"{type(value).__name__}"
    )


def _is_async(func: Callable[..., Any]) -> bool:
    """True for `async def` functions, bound methods, partials and callable objects."""
    if inspect.iscoroutinefunction(func):
        return True
    call = getattr(func, "__call__", None)  # noqa: B004 - we need the bound __call__
    return call is not None and inspect.iscoroutinefunction(call)


@dataclass(frozen=True, kw_only=True, slots=True)
class ResolvedHandler:
    """A handler ready to run: sync ones (`is_async` false) in a thread, async ones on the
    event loop named by `runtime` ("asyncio" unless marked for Trio)."""

    callable_name: str
    method: str
    func: Callable[[StepContext], Any]
    is_async: bool
    on_trio: bool = False
    signature: TypedSignature | None = None
    """Where a typed handler's arguments come from (None: it takes the context alone)."""

    @property
    def dependencies(self) -> tuple[str, ...]:
        """The dependency steps a typed handler requires (see `tasker_worker.sdk.typed`)."""
        return () if self.signature is None else self.signature.dependencies

    @property
    def runtime(self) -> Literal["sync", "asyncio", "trio"]:
        """Where the worker runs it: "sync" (a thread), "asyncio" or "trio"."""
        if not self.is_async:
            return "sync"
        return "trio" if self.on_trio else "asyncio"

    def invoke(self, context: StepContext) -> StepResult | Awaitable[StepResult]:
        """Run a sync handler (a StepResult) or start an async one (an awaitable of one)."""
        if self.is_async:
            return self.invoke_async(context)
        return self.invoke_sync(context)

    def invoke_sync(self, context: StepContext) -> StepResult:
        """Run a sync handler; TypeError for an async one or a sync one returning an awaitable."""
        if self.is_async:
            raise TypeError(f"handler {self.callable_name!r} is async; use invoke_async")
        value = self._call(context)
        if inspect.isawaitable(value):
            if inspect.iscoroutine(value):
                value.close()
            raise TypeError(
                f"handler {self.callable_name!r} returned an awaitable; declare it `async def`"
            )
        return coerce_result(value)

    async def invoke_async(self, context: StepContext) -> StepResult:
        """Run the handler and await its result if it is awaitable (works for sync ones too),
        on whatever event loop awaits this; the worker picks the loop by `runtime`."""
        value = self._call(context)
        if inspect.isawaitable(value):
            value = await value
        return coerce_result(value)

    def _call(self, context: StepContext) -> Any:
        """Call the handler: with the context alone, or with a typed handler's validated
        arguments (ValidationError / ConfigurationError when they do not fit)."""
        if self.signature is None:
            return self.func(context)
        args, kwargs = self.signature.arguments(context)
        return self.func(*args, **kwargs)


def _qualified(obj: object) -> str:
    """`module.qualname` of a function or class, to spot a re-definition of the same thing."""
    return f"{getattr(obj, '__module__', '')}.{getattr(obj, '__qualname__', repr(obj))}"


class HandlerRegistry:
    """Explicit handler-name → handler mapping, and the resolver that falls back to imports.

    A handler is a function taking a StepContext, a StepHandler subclass (instantiated once)
    or an object with the method to call.
    """

    def __init__(self) -> None:
        self._handlers: dict[str, object] = {}
        self._instances: dict[type, object] = {}
        self._resolved: dict[tuple[str, str, str | None], ResolvedHandler] = {}

    def register(self, name: str, handler: object, *, replace: bool = False) -> None:
        """Map `name` to `handler`. ValueError when `name` is already taken by something else
        (the same function or class defined again, e.g. on module reload, is allowed).
        """
        if not name:
            raise ValueError("handler name must not be empty")
        current = self._handlers.get(name)
        if (
            current is not None
            and not replace
            and current is not handler
            and _qualified(current) != _qualified(handler)
        ):
            raise ValueError(f"handler name {name!r} is already registered to {current!r}")
        self._handlers[name] = handler
        self._resolved.clear()

    def unregister(self, name: str) -> None:
        """Forget `name` (no error if unknown)."""
        self._handlers.pop(name, None)
        self._resolved.clear()

    def get(self, name: str) -> object | None:
        """The handler registered under `name`, or None."""
        return self._handlers.get(name)

    def names(self) -> list[str]:
        """Registered handler names, sorted."""
        return sorted(self._handlers)

    def __contains__(self, name: object) -> bool:
        return name in self._handlers

    def __len__(self) -> int:
        return len(self._handlers)

    def resolve(
        self, callable_name: str, method: str = "call", *, resolver: str | None = None
    ) -> ResolvedHandler:
        """The handler for a step's `handler.callable` (and `handler.method`).

        Tries the registry first, then imports `package.module.Name`; a `handler.resolver`
        hint uses one of them only (tasker-core's names: `explicit_mapping`, the registry;
        `class_lookup`, the import). HandlerNotFound if that does not work, the target has
        no usable `method`, or the hint names another resolver.
        """
        key = (callable_name, method, resolver)
        cached = self._resolved.get(key)
        if cached is not None:
            return cached
        target = self._find(callable_name, resolver)
        func = self._bind(callable_name, target, method)
        holder = self._instances.get(target) if inspect.isclass(target) else target
        is_async = _is_async(func)
        try:
            signature = signature_of(func)
        except TypeError as exc:
            raise HandlerNotFound(callable_name, f"its signature cannot be served: {exc}") from exc
        resolved = ResolvedHandler(
            callable_name=callable_name, method=method, func=func, is_async=is_async,
            on_trio=is_async and runtime_of(func, holder) == "trio", signature=signature,
        )
        self._resolved[key] = resolved
        return resolved

    def _find(self, callable_name: str, resolver: str | None) -> object:
        """What `callable_name` names, looked up as the `resolver` hint says."""
        if resolver not in RESOLVERS:
            raise HandlerNotFound(callable_name, f"unknown resolver {resolver!r} (this worker "
                                  f"resolves with {' or '.join(filter(None, RESOLVERS))})")
        target = None if resolver == "class_lookup" else self._handlers.get(callable_name)
        if target is not None:
            return target
        if resolver == "explicit_mapping":
            raise HandlerNotFound(callable_name, "not registered (resolver explicit_mapping)")
        return import_target(callable_name)

    def _bind(self, callable_name: str, target: object, method: str) -> Callable[..., Any]:
        """The callable to invoke for `target` and `method`."""
        if inspect.isclass(target):
            target = self._instance(callable_name, target)
        if inspect.isroutine(target) or isinstance(target, functools.partial):
            if method != "call":
                raise HandlerNotFound(
                    callable_name, f"it is a function; it has no method {method!r}"
                )
            return target
        bound: object = getattr(target, method, None)
        if callable(bound):
            return bound
        if method == "call" and callable(target):
            return target
        raise HandlerNotFound(callable_name, f"{target!r} has no callable {method!r}")

    def _instance(self, callable_name: str, cls: type) -> object:
        """The one instance of handler class `cls`."""
        instance = self._instances.get(cls)
        if instance is None:
            try:
                instance = cls()
            except TypeError as exc:
                raise HandlerNotFound(
                    callable_name, f"cannot instantiate {cls.__qualname__}: {exc}"
                ) from exc
            self._instances[cls] = instance
        return instance


default_registry = HandlerRegistry()
"""The process-wide registry `@step_handler` and StepHandler subclasses register into."""


def step_handler(
    name: str, *, runtime: HandlerRuntime = "asyncio", registry: HandlerRegistry | None = None
) -> Callable[[F], F]:
    """Register a function (sync or `async def`, taking a StepContext) under `name`.

    An `async def` handler runs on asyncio unless `runtime="trio"`; a sync one runs in a
    thread either way (and should poll `context.cancelled` when it runs long).
    """
    check_runtime(runtime)

    def decorate(func: F) -> F:
        if runtime != "asyncio":
            mark(func, runtime)
        (default_registry if registry is None else registry).register(name, func)
        return func

    return decorate


def resolve(
    callable_name: str,
    method: str = "call",
    *,
    resolver: str | None = None,
    registry: HandlerRegistry | None = None,
) -> ResolvedHandler:
    """Resolve through `registry` (default: the process-wide one); see HandlerRegistry.resolve."""
    chosen = default_registry if registry is None else registry
    return chosen.resolve(callable_name, method, resolver=resolver)


class StepHandler:
    """Base class for class-style handlers; subclasses defining `handler_name` auto-register.

    Pass `register=False` in the class statement to opt out. Override `call`, which may be
    `async def` (run on asyncio; set `runtime = "trio"` to run it under Trio), and build
    results with the helper methods.
    """

    handler_name: ClassVar[str]
    runtime: ClassVar[HandlerRuntime] = "asyncio"

    def __init_subclass__(cls, *, register: bool = True, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        mark(cls, check_runtime(cls.runtime))
        if register and "handler_name" in cls.__dict__:
            default_registry.register(cls.handler_name, cls)

    def call(self, context: StepContext) -> HandlerReturn | Awaitable[HandlerReturn]:
        """Run the step."""
        raise NotImplementedError(f"{type(self).__qualname__} must implement call()")

    def success(
        self,
        result: Mapping[str, Any] | None = None,
        *,
        metadata: Mapping[str, Any] | None = None,
    ) -> StepResult:
        """See `tasker_worker.sdk.results.success`."""
        return results.success(result, metadata=metadata)

    def failure(
        self,
        message: str,
        *,
        error_type: str = "handler_error",
        retryable: bool = True,
        status_code: int | None = None,
        context: Mapping[str, Any] | None = None,
        retry_after: str | float | None = None,
        backoff_hint_seconds: float | None = None,
        metadata: Mapping[str, Any] | None = None,
        error_code: str | None = None,
    ) -> StepResult:
        """See `tasker_worker.sdk.results.failure`."""
        return results.failure(
            message,
            error_type=error_type,
            retryable=retryable,
            status_code=status_code,
            context=context,
            retry_after=retry_after,
            backoff_hint_seconds=backoff_hint_seconds,
            metadata=metadata,
            error_code=error_code,
        )

    def checkpoint(
        self,
        cursor: Any,
        items_processed: int,
        accumulated_results: Mapping[str, Any] | None = None,
    ) -> StepResult:
        """See `tasker_worker.sdk.results.checkpoint`."""
        return results.checkpoint(cursor, items_processed, accumulated_results)

    def decision(self, step_names: Sequence[str]) -> StepResult:
        """See `tasker_worker.sdk.results.decision`."""
        return results.decision(step_names)

    def no_branches(self) -> StepResult:
        """See `tasker_worker.sdk.results.no_branches`."""
        return results.no_branches()

    def batches(
        self,
        cursor_configs: Sequence[Mapping[str, Any]],
        *,
        worker_template_name: str,
        total_items: int,
    ) -> StepResult:
        """See `tasker_worker.sdk.results.batches`."""
        return results.batches(
            cursor_configs, worker_template_name=worker_template_name, total_items=total_items
        )

    def no_batches(self) -> StepResult:
        """See `tasker_worker.sdk.results.no_batches`."""
        return results.no_batches()
