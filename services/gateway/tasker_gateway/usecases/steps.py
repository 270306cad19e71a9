"""Step use cases: read steps and their audit trail; operator actions (SPEC 6.3).

Each operator action is one transaction: an audited compare-and-swap transition (the
metadata names the actor, authenticated when auth is on, and the reason), then a re-evaluation of the task
(`tasker.resolve_step_v1`), then the step as it is now.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from psycopg.types.json import Jsonb

from tasker_gateway.auth import Principal
from tasker_gateway.context import GatewayContext
from tasker_gateway.models.common import JsonObject, StepState
from tasker_gateway.models.steps import (
    ResolveStepView,
    StepAuditRecordView,
    StepAuditView,
    StepView,
)
from tasker_gateway.usecases.inputs import check_json_input
from tasker_gateway.usecases.views import pick, require_task, step_view, step_views
from tasker_shared.contracts.messages import encode_step_execution_result
from tasker_shared.contracts.payloads import (
    StepExecutionMetadata,
    StepExecutionResult,
    StepResultStatus,
)
from tasker_shared.db.database import Conn
from tasker_shared.errors import ValidationError

ACTIONS = ("reset_for_retry", "resolve_manually", "complete_manually")


@dataclass(frozen=True, kw_only=True, slots=True)
class StepAction:
    """One operator action; `result`/`metadata` only for complete_manually."""

    action: str
    reason: str
    actor: str
    result: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValidationError(f"action: must be one of {', '.join(ACTIONS)},"
                                  f" got {self.action!r}")
        if not self.reason.strip():
            raise ValidationError("reason: must not be empty")
        if not self.actor.strip():
            raise ValidationError("actor: must not be empty")
        if self.action == "complete_manually" and self.result is None:
            raise ValidationError("result: complete_manually needs the result to store")


def _list(conn: Conn, task_uuid: UUID) -> list[StepView]:
    require_task(conn, task_uuid)
    return step_views(conn, task_uuid)


async def list_steps(ctx: GatewayContext, task_uuid: UUID) -> list[StepView]:
    return await ctx.db.run(_list, task_uuid)


async def get_step(ctx: GatewayContext, task_uuid: UUID, step_uuid: UUID) -> StepView:
    return await ctx.db.run(step_view, task_uuid, step_uuid)


def manual_result(step_uuid: UUID, action: StepAction) -> dict[str, Any]:
    """The StepExecutionResult stored for complete_manually (what dependents read)."""
    custom = dict(action.metadata or {})
    custom.update({"completed_manually": True, "completed_by": action.actor})
    return encode_step_execution_result(StepExecutionResult(
        step_uuid=step_uuid, success=True, status=StepResultStatus.COMPLETED,
        result=dict(action.result or {}),
        metadata=StepExecutionMetadata(completed_at=datetime.now(UTC), custom=custom)))


def audit_metadata(action: StepAction, principal: Principal) -> tuple[StepAction, JsonObject]:
    """The action as recorded (its actor: who is authenticated, see `Principal.audit_actor`)
    and the metadata of its audited transition."""
    actor, note = principal.audit_actor(action.actor)
    metadata: JsonObject = {"action": action.action, "actor": actor, "reason": action.reason,
                            "source": "api"}
    if not principal.unrestricted:
        metadata["authenticated_by"] = principal.method
    if note is not None:
        metadata["actor_note"] = note
    return replace(action, actor=actor), metadata


def _resolve(conn: Conn, task_uuid: UUID, step_uuid: UUID, action: StepAction,
             metadata: JsonObject, processor: UUID) -> ResolveStepView:
    results = manual_result(step_uuid, action) if action.action == "complete_manually" else None
    row = conn.execute(
        "SELECT * FROM tasker.resolve_step_v1(%s, %s, %s, %s, %s, %s)",
        (task_uuid, step_uuid, action.action, processor, Jsonb(metadata),
         Jsonb(results) if results is not None else None)).fetchone()
    assert row is not None
    return ResolveStepView(step=step_view(conn, task_uuid, step_uuid),
                           previous_state=StepState(row["previous_state"]))


async def resolve_step(ctx: GatewayContext, task_uuid: UUID, step_uuid: UUID,
                       action: StepAction, *, principal: Principal) -> ResolveStepView:
    check_json_input(ctx.settings.gateway, action.result, "completion_data.result")
    check_json_input(ctx.settings.gateway, action.metadata, "completion_data.metadata")
    recorded, metadata = audit_metadata(action, principal)
    return await ctx.db.run(_resolve, task_uuid, step_uuid, recorded, metadata,
                            ctx.processor_uuid)


def _audit(conn: Conn, task_uuid: UUID, step_uuid: UUID) -> StepAuditView:
    rows = conn.execute("SELECT * FROM tasker.get_step_audit_v1(%s, %s)",
                        (task_uuid, step_uuid)).fetchall()
    return StepAuditView(records=[pick(StepAuditRecordView, r) for r in rows])


async def step_audit(ctx: GatewayContext, task_uuid: UUID, step_uuid: UUID) -> StepAuditView:
    return await ctx.db.run(_audit, task_uuid, step_uuid)
