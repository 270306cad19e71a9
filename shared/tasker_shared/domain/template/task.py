"""The TaskTemplate value object: a named, versioned DAG of steps (SPEC §4.1)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .enums import IdentityStrategy
from .model import (
    DomainEvent,
    Lifecycle,
    StepOverride,
    StepTemplate,
    SystemDependencies,
    TemplateMetadata,
)
from .preview import show


@dataclass(frozen=True, kw_only=True, slots=True)
class TaskTemplate:
    """A validated task template. Build it with `parse_template` or `TaskTemplate.from_json`.

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
        """The whole template as JSON data (what `named_tasks.configuration` stores)."""
        from .serialize import template_to_json

        return template_to_json(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any], *, source: str = "<json>") -> TaskTemplate:
        """Rebuild a template from `to_json` output (skips re-checking the input schema)."""
        from .parse import parse_trusted

        return parse_trusted(data, source=source)

    def resolve_for_environment(self, environment: str) -> TaskTemplate:
        """A copy with the `environments[environment]` step overrides applied."""
        from .environments import resolve_for_environment

        return resolve_for_environment(self, environment)

    def validate_context(self, context: object) -> None:
        """Check a task's context against `input_schema`; ValidationError names each path."""
        from .schemas import validate_context

        validate_context(self, context)
