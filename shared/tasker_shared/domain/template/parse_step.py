"""Parsing of one template step and its parts (handler, retry, batch_config, events)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .enums import BackoffStrategy, DeliveryMode, EventCondition, FailureStrategy, StepType
from .model import (
    DEFAULT_BACKOFF_BASE_MS,
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_MAX_BACKOFF_MS,
    BatchConfig,
    EventDeclaration,
    HandlerSpec,
    RetryOverride,
    RetryPolicy,
    StepTemplate,
)
from .reader import Collector, Scope, label, show

STEP_KEYS = frozenset(
    (
        "name",
        "description",
        "handler",
        "type",
        "step_type",
        "system_dependency",
        "dependencies",
        "depends_on",
        "retry",
        "timeout_seconds",
        "publishes_events",
        "batch_config",
        "result_schema",
        "composition",
    )
)
STEP_LEGACY = {
    "lifecycle": "lifecycle is a template-level setting",
    "handler_class": "use handler.callable",
    "handler_config": "use handler.initialization",
}
HANDLER_KEYS = frozenset(("callable", "method", "resolver", "initialization"))
RETRY_KEYS = frozenset(
    ("retryable", "max_attempts", "backoff", "backoff_base_ms", "max_backoff_ms")
)
RETRY_LEGACY = {"limit": "use max_attempts; the default applies"}
BATCH_KEYS = frozenset(
    ("batch_size", "parallelism", "cursor_field", "worker_template", "failure_strategy")
)
EVENT_KEYS = frozenset(("name", "description", "condition", "schema", "delivery_mode", "publisher"))
MAX_TIMEOUT_SECONDS = 4_294_967_295
MAX_BACKOFF_MS = 3_600_000


def step_label(data: Mapping[Any, Any], index: int) -> str:
    """How problems refer to a step: by its name when it has a usable one."""
    name = data.get("name")
    if isinstance(name, str) and name:
        return f"step '{label(name)}'"
    return f"steps[{index}]"


def parse_step(col: Collector, raw: object, index: int) -> StepTemplate | None:
    """Parse `steps[index]`; returns None (after recording problems) when unusable."""
    if not isinstance(raw, Mapping):
        col.problem(f"steps[{index}]", f"a step must be a mapping, got {show(raw)}")
        return None
    scope = Scope(col, step_label(raw, index))
    scope.check_keys(raw, STEP_KEYS, STEP_LEGACY)
    name = scope.string(raw, "name", required=True)
    handler = _handler(scope, raw)
    step_type = _aliased(scope, raw, "type", "step_type")
    parsed_type = StepType.STANDARD
    if step_type is not None:
        key, value = step_type
        parsed_type = scope.choice({key: value}, key, StepType, StepType.STANDARD)
    dependencies = _dependencies(scope, raw)
    retry_data = scope.mapping(raw, "retry")
    retry = parse_retry(scope.child("retry"), retry_data) if retry_data else RetryPolicy()
    timeout = scope.integer(raw, "timeout_seconds", 1, MAX_TIMEOUT_SECONDS, None)
    events = tuple(
        event
        for i, item in enumerate(scope.items(raw, "publishes_events"))
        if (event := _event(scope, item, f"publishes_events[{i}]")) is not None
    )
    batch_data = scope.mapping(raw, "batch_config")
    batch = None if batch_data is None else _batch_config(scope.child("batch_config"), batch_data)
    step = StepTemplate(
        name=name or "",
        handler=handler or HandlerSpec(callable=""),
        step_type=parsed_type,
        description=scope.text(raw, "description"),
        system_dependency=scope.string(raw, "system_dependency"),
        dependencies=dependencies,
        retry=retry,
        timeout_seconds=timeout,
        publishes_events=events,
        batch_config=batch,
        result_schema=scope.schema(raw, "result_schema"),
        composition=scope.json(raw, "composition"),
    )
    return step if name is not None else None


def _aliased(scope: Scope, raw: Mapping[Any, Any], key: str, alias: str) -> tuple[str, Any] | None:
    """The value of `key` or its alias (problem when both are given and differ)."""
    has_key = raw.get(key) is not None
    has_alias = raw.get(alias) is not None
    if has_key and has_alias:
        if not _same(raw[key], raw[alias]):
            scope.problem(key, f"and its alias '{alias}' are both given and differ; give only one")
        else:
            scope.warn(f"'{key}' and its alias '{alias}' are both given; '{alias}' ignored")
        return key, raw[key]
    if has_key:
        return key, raw[key]
    if has_alias:
        return alias, raw[alias]
    return None


def _same(left: object, right: object) -> bool:
    """Equality for the values `_aliased` compares (a string or a list of strings), in
    linear time: other values only match themselves, so comparing values that share or
    nest references (YAML aliases) can never take exponential time."""
    if left is right:
        return True
    if isinstance(left, str) or isinstance(right, str):
        return left == right
    if isinstance(left, list | tuple) and isinstance(right, list | tuple):
        return len(left) == len(right) and all(
            isinstance(a, str) and isinstance(b, str) and a == b
            for a, b in zip(left, right, strict=True)
        )
    return False


def _dependencies(scope: Scope, raw: Mapping[Any, Any]) -> tuple[str, ...]:
    found = _aliased(scope, raw, "dependencies", "depends_on")
    if found is None:
        return ()
    names = scope.string_list({found[0]: found[1]}, found[0])
    unique = tuple(dict.fromkeys(names))
    if len(unique) != len(names):
        scope.warn(f"{found[0]} lists a step more than once; duplicates ignored")
    return unique


def _handler(scope: Scope, raw: Mapping[Any, Any]) -> HandlerSpec | None:
    data = raw.get("handler")
    if data is None:
        scope.problem("handler", "is required (a mapping with at least 'callable')")
        return None
    if not isinstance(data, Mapping):
        scope.problem("handler", f"must be a mapping with at least 'callable', got {show(data)}")
        return None
    sub = scope.child("handler")
    sub.check_keys(data, HANDLER_KEYS)
    callable_ = sub.string(data, "callable", required=True, max_len=500)
    method = sub.string(data, "method", default="call")
    resolver = sub.string(data, "resolver")
    init = sub.json_object(data, "initialization")
    if callable_ is None:
        return None
    return HandlerSpec(
        callable=callable_, method=method or "call", resolver=resolver, initialization=init or {}
    )


def _retry_fields(scope: Scope, data: Mapping[Any, Any]) -> dict[str, Any]:
    scope.check_keys(data, RETRY_KEYS, RETRY_LEGACY)
    return {
        "retryable": scope.boolean(data, "retryable", None),
        # 0 is tasker-core's too: the first attempt always runs, no retry ever does
        "max_attempts": scope.integer(data, "max_attempts", 0, 100, None),
        "backoff": scope.optional_choice(data, "backoff", BackoffStrategy),
        "backoff_base_ms": scope.integer(data, "backoff_base_ms", 0, MAX_BACKOFF_MS, None),
        "max_backoff_ms": scope.integer(data, "max_backoff_ms", 0, MAX_BACKOFF_MS, None),
    }


def parse_retry(scope: Scope, data: Mapping[Any, Any]) -> RetryPolicy:
    """A full retry policy; absent fields take the documented defaults."""
    got = _retry_fields(scope, data)
    return RetryPolicy(
        retryable=True if got["retryable"] is None else got["retryable"],
        max_attempts=(
            DEFAULT_MAX_ATTEMPTS if got["max_attempts"] is None else got["max_attempts"]
        ),
        backoff=got["backoff"] or BackoffStrategy.EXPONENTIAL,
        backoff_base_ms=(
            DEFAULT_BACKOFF_BASE_MS if got["backoff_base_ms"] is None else got["backoff_base_ms"]
        ),
        max_backoff_ms=(
            DEFAULT_MAX_BACKOFF_MS if got["max_backoff_ms"] is None else got["max_backoff_ms"]
        ),
    )


def parse_retry_override(scope: Scope, data: Mapping[Any, Any]) -> RetryOverride:
    """A partial retry policy: only the fields given are recorded."""
    return RetryOverride(**_retry_fields(scope, data))


def _batch_config(scope: Scope, data: Mapping[Any, Any]) -> BatchConfig:
    scope.check_keys(data, BATCH_KEYS)
    worker = scope.string(data, "worker_template", required=True)
    config = BatchConfig(
        worker_template=worker or "",
        batch_size=scope.integer(data, "batch_size", 1, 100_000, 1000) or 1000,
        parallelism=scope.integer(data, "parallelism", 1, 1000, 10) or 10,
        cursor_field=scope.string(data, "cursor_field", default="id") or "id",
        failure_strategy=scope.choice(
            data, "failure_strategy", FailureStrategy, FailureStrategy.CONTINUE_ON_FAILURE
        ),
    )
    return config


def _event(scope: Scope, raw: object, path: str) -> EventDeclaration | None:
    if not isinstance(raw, Mapping):
        scope.problem(path, f"must be a mapping with at least 'name', got {show(raw)}")
        return None
    sub = scope.child(path)
    sub.check_keys(raw, EVENT_KEYS)
    name = sub.string(raw, "name", required=True)
    event = EventDeclaration(
        name=name or "",
        description=sub.text(raw, "description"),
        condition=sub.choice(raw, "condition", EventCondition, EventCondition.SUCCESS),
        schema=sub.schema(raw, "schema"),
        delivery_mode=sub.choice(raw, "delivery_mode", DeliveryMode, DeliveryMode.DURABLE),
        publisher=sub.string(raw, "publisher", max_len=500),
    )
    return event if name is not None else None
