"""A template's parts as JSON data in the reference layout (`TaskTemplate.to_json` assembles them)."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from .model import (
    BatchConfig,
    DomainEvent,
    EventDeclaration,
    Lifecycle,
    RetryOverride,
    RetryPolicy,
    StepOverride,
    StepTemplate,
    TemplateMetadata,
)


def copy_json(value: Any) -> Any:
    """A private copy of an opaque JSON value, so callers cannot mutate the template."""
    return copy.deepcopy(value)


def metadata_to_json(metadata: TemplateMetadata | None) -> dict[str, Any] | None:
    if metadata is None:
        return None
    return {
        "author": metadata.author,
        "tags": list(metadata.tags),
        "documentation_url": metadata.documentation_url,
        "created_at": metadata.created_at,
        "updated_at": metadata.updated_at,
    }


def domain_event_to_json(event: DomainEvent) -> dict[str, Any]:
    return {"name": event.name, "description": event.description, "schema": copy_json(event.schema)}


def lifecycle_to_json(lifecycle: Lifecycle | None) -> dict[str, Any] | None:
    return None if lifecycle is None else _lifecycle(lifecycle)


def environments_to_json(
    environments: Mapping[str, tuple[StepOverride, ...]],
) -> dict[str, Any]:
    return {env: {"steps": [_override(o) for o in overrides]}
            for env, overrides in environments.items()}


def step_to_json(step: StepTemplate) -> dict[str, Any]:
    """One step in the reference layout."""
    out: dict[str, Any] = {
        "name": step.name,
        "description": step.description,
        "handler": {
            "callable": step.handler.callable,
            "method": step.handler.method,
            "resolver": step.handler.resolver,
            "initialization": copy_json(dict(step.handler.initialization)),
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
        out["result_schema"] = copy_json(step.result_schema)
    if step.composition is not None:
        out["composition"] = copy_json(step.composition)
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
        "schema": copy_json(event.schema),
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
        out["handler"] = {"initialization": copy_json(dict(override.initialization))}
    if override.timeout_seconds is not None:
        out["timeout_seconds"] = override.timeout_seconds
    if override.retry is not None:
        out["retry"] = _retry_override(override.retry)
    return out
