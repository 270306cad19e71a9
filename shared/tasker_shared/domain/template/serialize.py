"""Template → JSON data in the reference layout (what `named_tasks.configuration` holds)."""

from __future__ import annotations

import copy
from dataclasses import asdict
from typing import Any

from .model import (
    BatchConfig,
    EventDeclaration,
    Lifecycle,
    RetryOverride,
    RetryPolicy,
    StepOverride,
    StepTemplate,
)
from .task import TaskTemplate


def _plain(value: Any) -> Any:
    """A private copy of an opaque JSON value, so callers cannot mutate the template."""
    return copy.deepcopy(value)


def template_to_json(template: TaskTemplate) -> dict[str, Any]:
    metadata = template.metadata
    return {
        "name": template.name,
        "namespace_name": template.namespace,
        "version": template.version,
        "description": template.description,
        "identity_strategy": template.identity_strategy.value,
        "metadata": None
        if metadata is None
        else {
            "author": metadata.author,
            "tags": list(metadata.tags),
            "documentation_url": metadata.documentation_url,
            "created_at": metadata.created_at,
            "updated_at": metadata.updated_at,
        },
        "system_dependencies": {
            "primary": template.system_dependencies.primary,
            "secondary": list(template.system_dependencies.secondary),
        },
        "domain_events": [
            {"name": e.name, "description": e.description, "schema": _plain(e.schema)}
            for e in template.domain_events
        ],
        "input_schema": _plain(template.input_schema),
        "lifecycle": None if template.lifecycle is None else _lifecycle(template.lifecycle),
        "steps": [step_to_json(step) for step in template.steps],
        "environments": {
            env: {"steps": [_override(o) for o in overrides]}
            for env, overrides in template.environments.items()
        },
    }


def step_to_json(step: StepTemplate) -> dict[str, Any]:
    """One step in the reference layout."""
    out: dict[str, Any] = {
        "name": step.name,
        "description": step.description,
        "handler": {
            "callable": step.handler.callable,
            "method": step.handler.method,
            "resolver": step.handler.resolver,
            "initialization": _plain(dict(step.handler.initialization)),
        },
        "type": step.step_type.value,
        "system_dependency": step.system_dependency,
        "dependencies": list(step.dependencies),
        "retry": retry_to_json(step.retry),
        "timeout_seconds": step.timeout_seconds,
        "publishes_events": [_event(e) for e in step.publishes_events],
        "batch_config": None if step.batch_config is None else _batch(step.batch_config),
    }
    if step.result_schema is not None:
        out["result_schema"] = _plain(step.result_schema)
    if step.composition is not None:
        out["composition"] = _plain(step.composition)
    return out


def retry_to_json(retry: RetryPolicy) -> dict[str, Any]:
    return {
        "retryable": retry.retryable,
        "max_attempts": retry.max_attempts,
        "backoff": retry.backoff.value,
        "backoff_base_ms": retry.backoff_base_ms,
        "max_backoff_ms": retry.max_backoff_ms,
    }


def _retry_override(retry: RetryOverride) -> dict[str, Any]:
    return {key: value for key, value in asdict(retry).items() if value is not None}


def _batch(config: BatchConfig) -> dict[str, Any]:
    return {
        "batch_size": config.batch_size,
        "parallelism": config.parallelism,
        "cursor_field": config.cursor_field,
        "worker_template": config.worker_template,
        "failure_strategy": config.failure_strategy.value,
    }


def _event(event: EventDeclaration) -> dict[str, Any]:
    return {
        "name": event.name,
        "description": event.description,
        "condition": event.condition.value,
        "schema": _plain(event.schema),
        "delivery_mode": event.delivery_mode.value,
        "publisher": event.publisher,
    }


def _lifecycle(lifecycle: Lifecycle) -> dict[str, Any]:
    out = asdict(lifecycle)
    out["staleness_action"] = lifecycle.staleness_action.value
    return out


def _override(override: StepOverride) -> dict[str, Any]:
    out: dict[str, Any] = {"name": override.name}
    if override.initialization is not None:
        out["handler"] = {"initialization": _plain(dict(override.initialization))}
    if override.timeout_seconds is not None:
        out["timeout_seconds"] = override.timeout_seconds
    if override.retry is not None:
        out["retry"] = _retry_override(override.retry)
    return out
