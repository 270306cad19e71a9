"""Handlers of the domain event tests: tasker-core's Python domain event fixture
(tests/fixtures/task_templates/python/domain_event_publishing_py.yaml) rewritten for Tasker's
SDK, a step that fails on purpose, a custom publisher and a subscriber that records what it
receives."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime
from typing import Any

from tasker_worker.sdk import StepContext, StepResult, failure, step_handler, success
from tasker_worker.sdk.events import (
    DomainEvent,
    EventPublisher,
    StepEventContext,
    register_publisher,
    subscribe,
)

NS = "domain_events_py"


def _now() -> str:
    return datetime.now(UTC).isoformat()


@step_handler(f"{NS}.step_handlers.ValidateOrderHandler")
def validate_order(ctx: StepContext) -> StepResult:
    amount = ctx.get_input_or("amount", 0)
    if ctx.get_config("validation_mode") == "strict" and amount <= 0:
        return failure("Amount must be positive in strict mode", error_type="ValidationError",
                       retryable=False)
    checks = ["order_id_present", "customer_id_present"] + (["amount_positive"] if amount else [])
    return success({"order_id": ctx.get_input_or("order_id", str(uuid.uuid4())),
                    "validation_timestamp": _now(), "validation_checks": checks,
                    "validated": True})


@step_handler(f"{NS}.step_handlers.ProcessPaymentHandler")
def process_payment(ctx: StepContext) -> StepResult:
    if ctx.get_input_or("simulate_failure", False):
        return failure("Simulated payment failure", error_type="PaymentError", retryable=True,
                       metadata={"order_id": ctx.get_input_or("order_id", "unknown")})
    return success({"transaction_id": f"TXN-{uuid.uuid4()}", "amount": ctx.get_input("amount"),
                    "payment_method": "credit_card", "processed_at": _now(),
                    "status": "success"})


@step_handler(f"{NS}.step_handlers.UpdateInventoryHandler")
def update_inventory(ctx: StepContext) -> StepResult:
    return success({"order_id": ctx.get_input_or("order_id", "unknown"),
                    "items": [{"sku": "ITEM-001", "quantity": 1}, {"sku": "ITEM-002", "quantity": 2}],
                    "success": True, "updated_at": _now()})


@step_handler(f"{NS}.step_handlers.SendNotificationHandler")
def send_notification(ctx: StepContext) -> StepResult:
    return success({"notification_id": f"NOTIF-{uuid.uuid4()}",
                    "channel": ctx.get_config("notification_type", "email"),
                    "recipient": ctx.get_input_or("customer_id", "unknown"), "sent_at": _now(),
                    "status": "delivered"})


@step_handler("devents.charge")
def charge(ctx: StepContext) -> StepResult:
    """Fails (retryable, code `card_declined`) while `fail` is set in the task context."""
    if ctx.get_input_or("fail", False):
        return failure("card declined", error_code="card_declined", retryable=True)
    return success({"charge_id": "ch-1", "amount": 10})


class RefundPublisher(EventPublisher):
    """Builds its event from the step's error (a failed step's result is empty)."""

    name = "devents.publishers.RefundPublisher"

    def transform_payload(self, ctx: StepEventContext) -> dict[str, Any]:
        error = ctx.execution_result.get("error") or {}
        return {"error_code": ctx.execution_result["metadata"].get("error_code"),
                "error_message": error.get("message"), "attempt": ctx.attempt}

    def additional_metadata(self, ctx: StepEventContext) -> dict[str, Any]:
        return {"refund_policy": "auto", "task_uuid": "not-replaced"}


register_publisher(RefundPublisher())


class Received:
    """Every event the in-process subscriber was given, by name (thread-safe)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.events: list[DomainEvent] = []

    def add(self, event: DomainEvent) -> None:
        with self.lock:
            self.events.append(event)

    def of_task(self, task_uuid: str) -> list[DomainEvent]:
        with self.lock:
            return [e for e in self.events if e.metadata["task_uuid"] == task_uuid]


RECEIVED = Received()


@subscribe("*")
def record_everything(event: DomainEvent) -> None:
    RECEIVED.add(event)
