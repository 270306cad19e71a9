"""Typed handlers: parameters annotated with pydantic models get the task context and the
results of named dependencies, validated, before the handler runs.

    class Order(BaseModel):
        order_id: str
        amount: float

    class Validated(BaseModel):
        ok: bool

    @step_handler("orders.charge")
    def charge(ctx: StepContext, order: Order,
               check: Annotated[Validated, dependency("validate_order")]) -> Receipt: ...

Which value a parameter gets:
- annotated `StepContext`, or the first parameter unless one of the below: the context;
- `Annotated[T, dependency("step")]`: the `result` of dependency step `step`
  (`dependency()` alone: the step named like the parameter), validated as T;
- a pydantic model (or `Annotated[T, task_input()]`): the task's context, validated;
- any other parameter must have a default (it is left to it).

A value that does not validate fails the step at once (not retryable) with a
`validation_error` naming each field; a declared dependency the step does not have fails it
as a `configuration_error` (unless the annotation accepts None: then it gets None). A
signature the SDK cannot serve is reported when the handler is resolved (HandlerNotFound,
and `tasker worker --check` lists it).
"""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, TypeAdapter
from pydantic import ValidationError as PydanticValidationError

from tasker_worker.sdk.context import StepContext
from tasker_worker.sdk.errors import ConfigurationError, ValidationError

__all__ = ["Dependency", "TaskInput", "TypedSignature", "dependency", "task_input"]

MAX_LISTED_ERRORS = 10


@dataclass(frozen=True, slots=True)
class Dependency:
    """Marks a parameter as the result of dependency step `name` (None: the parameter's)."""

    name: str | None = None


@dataclass(frozen=True, slots=True)
class TaskInput:
    """Marks a parameter as the task's context (implied for a bare pydantic model)."""


def dependency(name: str | None = None) -> Dependency:
    """`Annotated[Model, dependency("step")]`: the parameter gets step `step`'s result."""
    if name is not None and (not isinstance(name, str) or not name):
        raise ValueError("dependency() takes a step name (a non-empty string)")
    return Dependency(name)


def task_input() -> TaskInput:
    """`Annotated[T, task_input()]`: the parameter gets the task's context as T."""
    return TaskInput()


@dataclass(frozen=True, slots=True)
class _Param:
    name: str
    source: Literal["context", "input", "dependency"]
    step: str | None = None  # the dependency step
    adapter: TypeAdapter[Any] | None = None
    type_name: str = ""
    optional: bool = False
    positional: bool = False


@dataclass(frozen=True, slots=True)
class TypedSignature:
    """How to call a typed handler: where each parameter's value comes from."""

    params: tuple[_Param, ...]

    @property
    def dependencies(self) -> tuple[str, ...]:
        """The dependency steps the handler requires (optional ones, `T | None`, left out)."""
        return tuple(p.step for p in self.params if p.step is not None and not p.optional)

    def arguments(self, ctx: StepContext) -> tuple[list[Any], dict[str, Any]]:
        """The handler's arguments for `ctx`; ValidationError / ConfigurationError (both
        permanent) when a value does not fit its declaration."""
        args: list[Any] = []
        kwargs: dict[str, Any] = {}
        for param in self.params:
            value = _value(param, ctx)
            if param.positional:
                args.append(value)
            else:
                kwargs[param.name] = value
        return args, kwargs


def signature_of(func: Callable[..., Any]) -> TypedSignature | None:
    """The typed signature of `func`, or None when it only takes the context (the plain
    `handler(ctx)` call). TypeError naming the parameter when it cannot be served."""
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError):  # no signature to read (a builtin): the plain call
        return None
    try:
        hints, unresolved = _hints(func), ""
    except Exception as exc:  # NameError of a forward reference, mostly
        hints, unresolved = {}, f" (its annotations cannot be resolved: {exc})"
    params: list[_Param] = []
    plain = True
    for index, p in enumerate(signature.parameters.values()):
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        param = _classify(p, hints.get(p.name, inspect.Parameter.empty), first=index == 0)
        if param is None:
            if p.default is p.empty:
                raise TypeError(
                    f"parameter {p.name!r} is neither the StepContext, a pydantic model of the "
                    f"task context, nor Annotated[..., dependency(...)], and has no default"
                    f"{unresolved}")
            if p.kind is p.POSITIONAL_ONLY:
                raise TypeError(f"positional-only parameter {p.name!r} cannot be left to its "
                                "default while later ones are passed")
            continue
        plain = plain and param.source == "context" and index == 0
        params.append(param)
    inputs = [p.name for p in params if p.source == "input"]
    if len(inputs) > 1:
        raise TypeError(f"parameters {', '.join(inputs)} all take the task context; "
                        "declare one")
    if plain:
        return None
    return TypedSignature(tuple(params))


def _hints(func: Callable[..., Any]) -> dict[str, Any]:
    target: Any = func
    if isinstance(target, functools.partial):
        target = target.func
    if not (inspect.isroutine(target) or inspect.isclass(target)):
        target = type(target).__call__  # a callable object
    return typing.get_type_hints(target, include_extras=True)


def _classify(p: inspect.Parameter, hint: Any, *, first: bool) -> _Param | None:
    positional = p.kind is p.POSITIONAL_ONLY
    base: Any = hint
    marks: tuple[Dependency | TaskInput, ...] = ()
    if typing.get_origin(hint) is typing.Annotated:
        base, *extras = typing.get_args(hint)
        marks = tuple(m for m in extras if isinstance(m, Dependency | TaskInput))
    if len(marks) > 1:
        raise TypeError(f"parameter {p.name!r} has more than one dependency()/task_input()")
    if marks and isinstance(marks[0], Dependency):
        return _typed(p, base, "dependency", marks[0].name or p.name, positional)
    if marks or _is_model(base):
        return _typed(p, base, "input", None, positional)
    if base is StepContext or (inspect.isclass(base) and issubclass(base, StepContext)):
        return _Param(p.name, "context", positional=positional)
    if first:  # untyped handlers: `handler(ctx)` whatever `ctx` is annotated with
        return _Param(p.name, "context", positional=positional)
    return None


def _typed(p: inspect.Parameter, base: Any, source: Literal["input", "dependency"],
           step: str | None, positional: bool) -> _Param:
    try:
        adapter: TypeAdapter[Any] = TypeAdapter(base)
    except Exception as exc:
        raise TypeError(f"parameter {p.name!r}: pydantic cannot validate {base!r}: {exc}") from exc
    return _Param(p.name, source, step, adapter, _type_name(base), _accepts_none(base),
                  positional)


def _is_model(hint: Any) -> bool:
    """A pydantic model, or an optional one (`Model | None`)."""
    if inspect.isclass(hint) and issubclass(hint, BaseModel):
        return True
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    return _accepts_none(hint) and len(args) == 1 and _is_model(args[0])


def _accepts_none(hint: Any) -> bool:
    return hint is None or type(None) in typing.get_args(hint)


def _type_name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or repr(hint)


def _value(param: _Param, ctx: StepContext) -> Any:
    if param.source == "context":
        return ctx
    assert param.adapter is not None
    if param.source == "input":
        return _validated(param, ctx.task_context, "the task context")
    assert param.step is not None
    if param.step not in ctx.dependency_results:
        if param.optional:
            return None
        available = ", ".join(sorted(ctx.dependency_results)) or "none"
        raise ConfigurationError(
            f"handler {ctx.handler_name!r} declares dependency {param.step!r} (parameter "
            f"{param.name!r}), but step {ctx.step_name!r} has no result from it "
            f"(available: {available})", context={"dependency": param.step})
    return _validated(param, ctx.dependency_result(param.step),
                      f"the result of dependency {param.step!r}")


def _validated(param: _Param, value: Any, what: str) -> Any:
    assert param.adapter is not None
    try:
        return param.adapter.validate_python(value)
    except PydanticValidationError as exc:
        errors = [{"field": _field(e["loc"]), "message": e["msg"], "type": e["type"]}
                  for e in exc.errors(include_url=False, include_input=False)]
        listed = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:MAX_LISTED_ERRORS])
        more = len(errors) - MAX_LISTED_ERRORS
        raise ValidationError(
            f"{what} does not match {param.type_name} (parameter {param.name!r}): {listed}"
            + (f"; and {more} more" if more > 0 else ""),
            context={"parameter": param.name, "model": param.type_name, "errors": errors},
        ) from None


def _field(loc: tuple[int | str, ...]) -> str:
    """A pydantic error location as a dotted path (`items.0.qty`; `(root)` for the value)."""
    return ".".join(str(part) for part in loc) or "(root)"
