"""Step and template calls: arguments checked and turned into requests, replies into results."""

from __future__ import annotations

from collections.abc import Mapping
from operator import attrgetter
from typing import Any

from tasker_client.convert import UuidLike, parse_enum, to_json_text, uuid_text
from tasker_client.core import Call
from tasker_client.errors import ValidationError
from tasker_client.proto.tasker.v1 import (
    GetStepAuditRequest,
    GetStepRequest,
    GetTemplateRequest,
    ListStepsRequest,
    ListTemplatesRequest,
    ResolutionStrategy,
    ResolveStepRequest,
    Step,
    StepAuditRecord,
    TemplateDetail,
)
from tasker_client.results import StepResolution, TemplateCatalog


def list_steps(task_uuid: UuidLike, *, call_timeout: float | None = None) -> Call[tuple[Step, ...]]:
    """The task's workflow steps with their readiness."""
    request = ListStepsRequest(task_uuid=uuid_text(task_uuid, "task_uuid"))
    return Call(service="steps", method="list_steps", request=request, timeout=call_timeout,
                convert=lambda reply: tuple(reply.steps))


def get_step(
    task_uuid: UuidLike, step_uuid: UuidLike, *, call_timeout: float | None = None
) -> Call[Step]:
    """One workflow step of a task."""
    request = GetStepRequest(
        task_uuid=uuid_text(task_uuid, "task_uuid"), step_uuid=uuid_text(step_uuid, "step_uuid")
    )
    return Call(service="steps", method="get_step", request=request, timeout=call_timeout,
                convert=attrgetter("step"))


def resolve_step(
    task_uuid: UuidLike,
    step_uuid: UuidLike,
    *,
    action: ResolutionStrategy | str,
    reason: str = "",
    actor: str = "",
    result: Mapping[str, Any] | None = None,
    metadata: Mapping[str, Any] | None = None,
    call_timeout: float | None = None,
) -> Call[StepResolution]:
    """reset_for_retry, resolve_manually or complete_manually (with `result`) a step."""
    strategy = parse_enum(ResolutionStrategy, action)
    if result is not None and strategy != ResolutionStrategy.COMPLETE_MANUALLY:
        raise ValidationError("result: only allowed with complete_manually")
    request = ResolveStepRequest(
        task_uuid=uuid_text(task_uuid, "task_uuid"),
        step_uuid=uuid_text(step_uuid, "step_uuid"),
        action=strategy,
        reason=reason,
        actor=actor,
        result_json=to_json_text(result),
        metadata_json=to_json_text(metadata),
    )
    return Call(service="steps", method="resolve_step", request=request, timeout=call_timeout,
                convert=lambda reply: StepResolution(
                    step=reply.step, previous_state=reply.previous_state))


def step_audit(
    task_uuid: UuidLike, step_uuid: UuidLike, *, call_timeout: float | None = None
) -> Call[tuple[StepAuditRecord, ...]]:
    """The step's recorded results with their transitions, newest first."""
    request = GetStepAuditRequest(
        task_uuid=uuid_text(task_uuid, "task_uuid"), step_uuid=uuid_text(step_uuid, "step_uuid")
    )
    return Call(service="steps", method="get_step_audit", request=request, timeout=call_timeout,
                convert=lambda reply: tuple(reply.records))


def list_templates(
    *, namespace: str | None = None, call_timeout: float | None = None
) -> Call[TemplateCatalog]:
    """Known templates, optionally in one namespace."""
    request = ListTemplatesRequest(namespace=namespace)
    return Call(service="templates", method="list_templates", request=request,
                timeout=call_timeout, convert=lambda reply: TemplateCatalog(
                    templates=tuple(reply.templates), namespaces=tuple(reply.namespaces)))


def get_template(
    namespace: str, name: str, version: str, *, call_timeout: float | None = None
) -> Call[TemplateDetail]:
    """One template with its steps; NotFoundError when unknown."""
    request = GetTemplateRequest(namespace=namespace, name=name, version=version)
    return Call(service="templates", method="get_template", request=request,
                timeout=call_timeout, convert=attrgetter("template"))
