"""Which of a finished step's declared events it publishes, and their payloads: the
declaration's condition, its publisher (custom or default), its JSON Schema, the bounds."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from jsonschema.exceptions import SchemaError
from referencing.exceptions import Unresolvable

from tasker_shared.domain.limits import JsonLimitError, check_json
from tasker_shared.domain.template.enums import EventCondition
from tasker_shared.domain.template.model import EventDeclaration
from tasker_shared.domain.template.schemas import check_schema, validator_for_schema
from tasker_worker.events.model import RoutedEvent, uuid7
from tasker_worker.runtime.claims import StepOutcome
from tasker_worker.sdk.events import (
    DomainEvent,
    EventPublisher,
    PublisherRegistry,
    StepEventContext,
)

log = structlog.get_logger("tasker.worker.events")

DEFAULT_PUBLISHER = "DefaultDomainEventPublisher"  # tasker-core's fired_by for it
EVENT_VERSION = "1.0"
MAX_REPORTED_ERRORS = 5
_warned_unknown: set[str] = set()


@dataclass(frozen=True, kw_only=True, slots=True)
class Plan:
    """The events a step publishes; how many declarations were skipped (condition not met
    or declined by their publisher) and why the others were rejected."""

    events: tuple[RoutedEvent, ...] = ()
    skipped: int = 0
    rejected: tuple[str, ...] = ()


def will_retry(outcome: StepOutcome) -> bool:
    """Whether orchestration retries this failure: retryable, with an attempt left (the rule
    result processing applies)."""
    if outcome.success:
        return False
    metadata = outcome.payload.get("metadata") or {}
    return bool(metadata.get("retryable")) and outcome.step.attempt < outcome.step.max_attempts


def condition_met(condition: EventCondition, *, success: bool, retry: bool) -> bool:
    """tasker-core's publication conditions; retryable/permanent split the failures by
    whether the step will be retried."""
    if condition is EventCondition.ALWAYS:
        return True
    if condition is EventCondition.SUCCESS:
        return success
    if success:
        return False
    if condition is EventCondition.RETRYABLE_FAILURE:
        return retry
    if condition is EventCondition.PERMANENT_FAILURE:
        return not retry
    return True  # FAILURE


def payload_errors(schema: Any, payload: Any) -> list[str]:
    """How `payload` breaks `schema` ("path: message"; empty when it conforms or there is no
    schema). An unusable schema is reported as such."""
    if schema is None:
        return []
    problem = check_schema(schema)
    if problem is not None:
        return [f"the declared schema is not a valid JSON Schema: {problem}"]
    try:
        found = sorted(validator_for_schema(schema).iter_errors(payload),
                       key=lambda e: [str(p) for p in e.path])
    except (Unresolvable, SchemaError) as exc:
        return [f"the declared schema cannot be applied: {exc}"]
    return [f"{e.json_path}: {e.message}" for e in found[:MAX_REPORTED_ERRORS]]


def _publisher(decl: EventDeclaration, publishers: PublisherRegistry) -> EventPublisher | None:
    found = publishers.get(decl.publisher)
    if found is None and decl.publisher and decl.publisher not in _warned_unknown:
        _warned_unknown.add(decl.publisher)
        log.warning("event_publisher_unknown", publisher=decl.publisher,
                    event_name=decl.name, action="default_publisher")
    return found


def _task_sequence_step(outcome: StepOutcome) -> dict[str, Any]:
    step = outcome.step
    return {
        "task": {"task_uuid": str(step.task_uuid), "namespace_name": step.namespace,
                 "name": step.task_name, "version": step.task_version,
                 "correlation_id": str(step.correlation_id), "context": step.task_context},
        "workflow_step": {"workflow_step_uuid": str(step.step_uuid), "name": step.step_name,
                          "attempts": step.attempt, "max_attempts": step.max_attempts},
        "step_definition": {"name": step.step_name, "handler": {"callable": outcome.handler}},
    }


def _context(outcome: StepOutcome, name: str) -> StepEventContext:
    step = outcome.step
    result = outcome.payload.get("result")
    return StepEventContext(
        event_name=name, task_uuid=str(step.task_uuid), step_uuid=str(step.step_uuid),
        step_name=step.step_name, namespace=step.namespace,
        correlation_id=str(step.correlation_id), success=outcome.success,
        attempt=step.attempt, max_attempts=step.max_attempts,
        result=result if isinstance(result, dict) else {}, execution_result=outcome.payload)


def _unbounded(name: str, payload: Any, extra: dict[str, Any],
               max_bytes: int | None) -> str | None:
    """Why a payload (or publisher metadata) cannot be sent: past the bounds, or not JSON
    (PostgreSQL's jsonb would refuse the whole record)."""
    try:
        check_json(payload, what=f"event {name} payload", max_bytes=max_bytes)
        check_json(extra, what=f"event {name} metadata", max_bytes=max_bytes)
        json.dumps([payload, extra], allow_nan=False)
    except JsonLimitError as exc:
        return str(exc)
    except (TypeError, ValueError) as exc:
        return f"payload is not representable as JSON: {exc}"
    return None


def plan_events(outcome: StepOutcome, *, publishers: PublisherRegistry,
                max_bytes: int | None) -> Plan:
    """The events `outcome` publishes. A payload that breaks its schema or the bounds, or a
    publisher that raises, rejects that event only (tasker-core: logged, never the step's
    concern)."""
    retry = will_retry(outcome)
    events: list[RoutedEvent] = []
    rejected: list[str] = []
    skipped = 0
    tss: dict[str, Any] | None = None
    for decl in outcome.declared:
        if not condition_met(decl.condition, success=outcome.success, retry=retry):
            skipped += 1
            continue
        ctx = _context(outcome, decl.name)
        publisher = _publisher(decl, publishers)
        try:
            if publisher is not None and not publisher.should_publish(ctx):
                skipped += 1
                continue
            payload = ctx.result if publisher is None else publisher.transform_payload(ctx)
            extra = {} if publisher is None else dict(publisher.additional_metadata(ctx))
        except Exception as exc:
            rejected.append(f"{decl.name}: publisher {decl.publisher} raised "
                            f"{type(exc).__name__}: {exc}")
            continue
        errors = payload_errors(decl.schema, payload)
        if errors:
            rejected.append(f"{decl.name}: payload does not match its schema: "
                            + "; ".join(errors))
            continue
        problem = _unbounded(decl.name, payload, extra, max_bytes)
        if problem is not None:
            rejected.append(f"{decl.name}: {problem}")
            continue
        tss = tss or _task_sequence_step(outcome)
        metadata = {**extra, "task_uuid": ctx.task_uuid, "step_uuid": ctx.step_uuid,
                    "step_name": ctx.step_name, "namespace": ctx.namespace,
                    "correlation_id": ctx.correlation_id,
                    "fired_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
                    "fired_by": (publisher.name or decl.publisher) if publisher is not None
                    else DEFAULT_PUBLISHER}
        events.append(RoutedEvent(decl.delivery_mode, DomainEvent(
            event_id=str(uuid7()), event_name=decl.name, event_version=EVENT_VERSION,
            payload=payload, execution_result=outcome.payload, task_sequence_step=tss,
            metadata=metadata)))
    return Plan(events=tuple(events), skipped=skipped, rejected=tuple(rejected))
