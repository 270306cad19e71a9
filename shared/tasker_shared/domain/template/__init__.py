"""Task templates: the YAML model, its validation, graph computations and loading (SPEC §4).

Modules depend one way (tests/unit/test_template_layers.py): enums, preview, reader and
bounds at the bottom; model (the step value objects); serialize, environments and schemas
(about a template's parts); task (TaskTemplate, whose to_json / resolve_for_environment /
validate_context use those three); graph and checks (about a whole template); parse_step
and parse (parse_template, template_from_json: they build templates); text (YAML) on top.
"""

from __future__ import annotations

from .enums import (
    BackoffStrategy,
    DeliveryMode,
    EventCondition,
    FailureStrategy,
    IdentityStrategy,
    StalenessAction,
    StepType,
)
from .graph import (
    DecisionPlan,
    convergence_steps_for_worker_template,
    decision_graph_names,
    dependency_levels,
    initial_step_names,
    steps_for_decision,
)
from .model import (
    BatchConfig,
    DomainEvent,
    EventDeclaration,
    HandlerSpec,
    Lifecycle,
    RetryOverride,
    RetryPolicy,
    StepOverride,
    StepTemplate,
    SystemDependencies,
    TemplateMetadata,
)
from .parse import parse_template, template_from_json
from .task import TaskTemplate
from .text import parse_template_text

__all__ = [
    "BackoffStrategy",
    "BatchConfig",
    "DecisionPlan",
    "DeliveryMode",
    "DomainEvent",
    "EventCondition",
    "EventDeclaration",
    "FailureStrategy",
    "HandlerSpec",
    "IdentityStrategy",
    "Lifecycle",
    "RetryOverride",
    "RetryPolicy",
    "StalenessAction",
    "StepOverride",
    "StepTemplate",
    "StepType",
    "SystemDependencies",
    "TaskTemplate",
    "TemplateMetadata",
    "convergence_steps_for_worker_template",
    "decision_graph_names",
    "dependency_levels",
    "initial_step_names",
    "parse_template",
    "parse_template_text",
    "steps_for_decision",
    "template_from_json",
]
