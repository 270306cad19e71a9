"""Which event loop an `async def` handler runs on: asyncio (the default) or Trio (marked)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, Literal, TypeAlias, TypeVar

__all__ = ["RUNTIMES", "HandlerRuntime", "check_runtime", "mark", "runtime_of", "trio_handler"]

F = TypeVar("F", bound=Callable[..., Any])

HandlerRuntime: TypeAlias = Literal["asyncio", "trio"]
"""The event loop an `async def` handler runs on (sync handlers always run in a thread)."""
RUNTIMES: tuple[HandlerRuntime, ...] = ("asyncio", "trio")
_MARK = "__tasker_runtime__"


def check_runtime(runtime: object) -> HandlerRuntime:
    """`runtime` when it names a runtime; ValueError otherwise."""
    if runtime not in RUNTIMES:
        raise ValueError(f"runtime must be one of {', '.join(RUNTIMES)}, not {runtime!r}")
    return runtime


def trio_handler(func: F) -> F:
    """Mark an `async def` handler (function, method or class) to run under Trio instead of
    asyncio. Use it on handlers named by a dotted path; `@step_handler(name,
    runtime="trio")` registers and marks in one go, and a StepHandler subclass sets
    `runtime = "trio"`."""
    return mark(func, "trio")


def mark(func: F, runtime: str) -> F:
    """Record `runtime` on `func` (on the function behind a bound method)."""
    target = func.__func__ if inspect.ismethod(func) else func
    setattr(target, _MARK, check_runtime(runtime))
    return func


def runtime_of(func: Callable[..., Any], holder: object) -> HandlerRuntime:
    """The runtime marked on the callable the worker invokes (or the function a partial
    wraps) or, failing that, on the object or class it belongs to; asyncio by default."""
    for candidate in (func, getattr(func, "func", None), holder):
        found = getattr(candidate, _MARK, None)
        if found in RUNTIMES:
            return found  # type: ignore[no-any-return]
    return "asyncio"
