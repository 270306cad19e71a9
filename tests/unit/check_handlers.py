"""Handlers of test_worker_handler_check.py (registered in the default registry, as a
worker's handler module registers them)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel

from tasker_worker.sdk import StepContext, dependency, step_handler


class Order(BaseModel):
    order_id: str


class Checked(BaseModel):
    ok: bool


@step_handler("chk.validate")
def validate(ctx: StepContext, order: Order) -> Checked:
    return Checked(ok=bool(order.order_id))


@step_handler("chk.charge")
async def charge(ctx: StepContext, order: Order,
                 check: Annotated[Checked, dependency("validate")],
                 audit: Annotated[Checked | None, dependency("audit")]) -> dict[str, bool]:
    return {"charged": check.ok}


@step_handler("chk.spare")
def spare(ctx: StepContext) -> None:
    return None
