"""The TaskTemplate value object: a named, versioned DAG of steps (SPEC §4.1)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from .enums import IdentityStrategy
from .environments import apply_overrides
from .model import (
    DomainEvent,
    Lifecycle,
    StepOverride,
    StepTemplate,
    SystemDependencies,
    TemplateMetadata,
)
from .preview import show
from .schemas import check_context, validator_for_schema
from .serialize import (
    copy_json,
    domain_event_to_json,
    environments_to_json,
    lifecycle_to_json,
    metadata_to_json,
    step_to_json,
)


@dataclass(frozen=True, kw_only=True, slots=True)
class TaskTemplate:
    """A validated task template. Build it with `parse_template` or `template_from_json`.

    `warnings` lists keys that were accepted but ignored (legacy or unknown); like
    `source`, it does not take part in equality.
    """

    name: str
    namespace: str
    version: str
    steps: tuple[StepTemplate, ...]
    description: str | None = None
    identity_strategy: IdentityStrategy = IdentityStrategy.STRICT
    metadata: TemplateMetadata | None = None
    system_dependencies: SystemDependencies = field(default_factory=SystemDependencies)
    domain_events: tuple[DomainEvent, ...] = ()
    input_schema: Any = None
    lifecycle: Lifecycle | None = None
    environments: Mapping[str, tuple[StepOverride, ...]] = field(default_factory=dict)
    warnings: tuple[str, ...] = field(default=(), compare=False)
    source: str = field(default="<template>", compare=False)
    _by_name: dict[str, StepTemplate] = field(init=False, repr=False, compare=False)
    _validator: Any = field(init=False, repr=False, compare=False, default=None)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", {step.name: step for step in self.steps})

    @property
    def key(self) -> str:
        """`namespace/name:version`, for messages and logs."""
        return f"{self.namespace}/{self.name}:{self.version}"

    @property
    def step_names(self) -> tuple[str, ...]:
        """Step names in declaration order."""
        return tuple(step.name for step in self.steps)

    def has_step(self, name: str) -> bool:
        return name in self._by_name

    def get_step(self, name: str) -> StepTemplate | None:
        return self._by_name.get(name)

    def step(self, name: str) -> StepTemplate:
        """The step called `name`; KeyError when the template has no such step."""
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(f"template {self.key} has no step named {show(name)}") from None

    def to_json(self) -> dict[str, Any]:
        """The whole template as JSON data (what `named_tasks.configuration` stores);
        `template_from_json` (parse.py) reads it back."""
        return {
            "name": self.name,
            "namespace_name": self.namespace,
            "version": self.version,
            "description": self.description,
            "identity_strategy": self.identity_strategy.value,
            "metadata": metadata_to_json(self.metadata),
            "system_dependencies": {
                "primary": self.system_dependencies.primary,
                "secondary": list(self.system_dependencies.secondary),
            },
            "domain_events": [domain_event_to_json(e) for e in self.domain_events],
            "input_schema": copy_json(self.input_schema),
            "lifecycle": lifecycle_to_json(self.lifecycle),
            "steps": [step_to_json(step) for step in self.steps],
            "environments": environments_to_json(self.environments),
        }

    def resolve_for_environment(self, environment: str) -> TaskTemplate:
        """A copy with the `environments[environment]` step overrides applied in order
        (environments.apply_overrides); unknown environments leave the template unchanged."""
        overrides = self.environments.get(environment)
        if not overrides:
            return self
        return replace(self, steps=apply_overrides(self.steps, overrides))

    def validate_context(self, context: object) -> None:
        """Check a task's context against `input_schema`; ValidationError names each path."""
        if self.input_schema is None:
            return
        if self._validator is None:
            object.__setattr__(self, "_validator", validator_for_schema(self.input_schema))
        check_context(self._validator, context, template_key=self.key)
