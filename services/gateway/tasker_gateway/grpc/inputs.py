"""Requests of tasker.v1 turned into use-case inputs (proto3 defaults mean "unset"). A JSON
value comes from its `*_json` text field when set (exact integers), else from its Struct."""

from __future__ import annotations

import math
from typing import Any

from tasker_gateway.grpc.convert import from_struct, state_name
from tasker_gateway.models.common import TaskState
from tasker_gateway.models.operations import DlqResolutionStatus, DlqUpdateBody
from tasker_gateway.models.tasks import TaskRequestBody
from tasker_gateway.usecases.inputs import bounded, reject_nul, validated
from tasker_gateway.usecases.steps import StepAction
from tasker_gateway.usecases.tasks import DEFAULT_PER_PAGE, TaskListQuery
from tasker_shared.contracts.generated.google.protobuf import Struct
from tasker_shared.contracts.generated.tasker import v1 as pb
from tasker_shared.domain.limits import loads_bounded
from tasker_shared.errors import ValidationError

_ACTIONS = {pb.ResolutionStrategy.RESET_FOR_RETRY: "reset_for_retry",
            pb.ResolutionStrategy.RESOLVE_MANUALLY: "resolve_manually",
            pb.ResolutionStrategy.COMPLETE_MANUALLY: "complete_manually"}
MAX_PAGE = 1_000_000  # as REST's ?page=


def _finite(value: Any, what: str) -> None:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            raise ValidationError(f"{what}: NaN and Infinity are not JSON numbers",
                                  details={"field": what})
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def json_object(text: str | None, struct: Struct | None, what: str) -> dict[str, Any] | None:
    """The JSON object of field `what`: parsed from its `{what}_json` text when that is set
    (then the Struct must be empty), else read from the Struct (None when unset)."""
    if not text:
        return from_struct(struct)
    if struct is not None and struct.fields:
        raise ValidationError(f"{what}: send either {what}_json or {what}, not both",
                              details={"field": what})
    value = loads_bounded(text, what=f"{what}_json")
    if not isinstance(value, dict):
        raise ValidationError(f"{what}_json: expected a JSON object, got"
                              f" {type(value).__name__}", details={"field": f"{what}_json"})
    _finite(value, f"{what}_json")
    return value


def task_request(message: pb.TaskRequest | None, *, context_json: str | None = None
                 ) -> TaskRequestBody:
    """The body of a TaskRequest; `context_json` (the request's exact context) replaces
    its Struct context."""
    if message is None:
        raise ValidationError("task: the task request is required")
    data: dict[str, Any] = {"name": message.name}
    for key in ("namespace", "version", "initiator", "source_system", "reason",
                "correlation_id"):
        value = getattr(message, key)
        if value:
            data[key] = value
    context = json_object(context_json, message.context, "context")
    if context is not None:
        data["context"] = context
    if message.options is not None:
        data["options"] = from_struct(message.options)
    for key in ("priority", "parent_correlation_id", "idempotency_key", "requested_at"):
        value = getattr(message, key)
        if value is not None:
            data[key] = value
    data["tags"] = list(message.tags)
    reject_nul(data, "task")
    return validated(lambda: TaskRequestBody.model_validate(data), where="task")


def list_query(message: pb.ListTasksRequest) -> TaskListQuery:
    page = message.pagination
    created = message.created_at
    status = message.status
    return TaskListQuery(
        page=bounded(page.page, "page", low=1, high=MAX_PAGE) if page and page.page else 1,
        per_page=(page.per_page if page and page.per_page else DEFAULT_PER_PAGE),
        namespace=message.namespace or None,
        status=TaskState(state_name(status)) if status else None,
        initiator=message.initiator or None, source_system=message.source_system or None,
        name=message.name or None,
        ascending=message.sort_direction == pb.SortDirection.ASC,
        created_from=created.start if created else None,
        created_to=created.end if created else None)


def step_action(message: pb.ResolveStepRequest, actor: str) -> StepAction:
    action = _ACTIONS.get(message.action)
    if action is None:
        raise ValidationError("action: choose RESET_FOR_RETRY, RESOLVE_MANUALLY or"
                              " COMPLETE_MANUALLY")
    result = json_object(message.result_json, message.result, "result")
    metadata = json_object(message.metadata_json, message.metadata, "metadata")
    reject_nul([message.reason, message.actor, result, metadata], "request")
    if action == "complete_manually" and result is None:
        result = {}
    return StepAction(action=action, reason=message.reason or f"{action} through gRPC",
                      actor=message.actor or actor, result=result, metadata=metadata)


def dlq_update(message: pb.UpdateInvestigationRequest) -> DlqUpdateBody:
    status = message.resolution_status
    data: dict[str, Any] = {
        "resolution_status": DlqResolutionStatus(state_name(status)) if status else None,
        "resolution_notes": message.resolution_notes,
        "resolved_by": message.resolved_by,
        "metadata": from_struct(message.metadata),
    }
    reject_nul(data, "request")
    return validated(lambda: DlqUpdateBody.model_validate(data), where="request")
