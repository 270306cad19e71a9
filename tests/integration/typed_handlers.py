"""Handlers of test_typed_pipeline.py: typed handlers of each kind (sync, asyncio, Trio) that
report progress with heartbeats, and handlers that heartbeat until their run is cancelled.

The worker runs in the test's process, so the heartbeat loops report through `SEEN`."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Annotated

import trio
from pydantic import BaseModel, Field

from tasker_worker.sdk import StepCancelled, StepContext, dependency, step_handler
from tests.integration.aio_handlers import Probe


class Item(BaseModel):
    sku: str
    qty: int = Field(gt=0)


class Order(BaseModel):
    order_id: str
    items: list[Item]


class Checked(BaseModel):
    units: int


class Receipt(BaseModel):
    order_id: str
    units: int
    kind: str


@step_handler("typed.validate")
def validate(ctx: StepContext, order: Order) -> Checked:
    return Checked(units=sum(item.qty for item in order.items))


@step_handler("typed.charge_sync")
def charge_sync(ctx: StepContext, order: Order,
                check: Annotated[Checked, dependency("validate")]) -> Receipt:
    ctx.heartbeat({"done": 1, "of": 1}, message="charged (sync)")
    return Receipt(order_id=order.order_id, units=check.units, kind="sync")


@step_handler("typed.charge_asyncio")
async def charge_asyncio(ctx: StepContext, order: Order,
                         validate: Annotated[Checked, dependency()]) -> Receipt:
    await asyncio.sleep(0)
    await ctx.aheartbeat({"done": 1, "of": 1}, message="charged (asyncio)")
    return Receipt(order_id=order.order_id, units=validate.units, kind="asyncio")


@step_handler("typed.charge_trio", runtime="trio")
async def charge_trio(ctx: StepContext, order: Order,
                      check: Annotated[Checked, dependency("validate")]) -> Receipt:
    await trio.lowlevel.checkpoint()
    await ctx.aheartbeat({"done": 1, "of": 1}, message="charged (trio)")
    return Receipt(order_id=order.order_id, units=check.units, kind="trio")


SEEN: defaultdict[tuple[str, str], Probe] = defaultdict(Probe)
"""By (task_uuid, kind)."""
BEATS = 1200  # 60 s of heartbeats 50 ms apart: far longer than the test waits


@step_handler("typed.beat_sync")
def beat_sync(ctx: StepContext) -> dict[str, bool]:
    seen = SEEN[(ctx.task_uuid, "sync")]
    try:
        for i in range(BEATS):
            ctx.heartbeat(i)
            seen.started.set()
            ctx.wait_cancelled(0.05)
    except StepCancelled as exc:
        seen.saw(f"StepCancelled: {exc}")
        raise
    seen.saw("ran to the end")
    return {"finished": True}


async def _beat_async(ctx: StepContext, kind: str, sleep: object,
                      cancelled: type[BaseException]) -> dict[str, bool]:
    seen = SEEN[(ctx.task_uuid, kind)]
    try:
        for i in range(BEATS):
            await ctx.aheartbeat(i)
            seen.started.set()
            await sleep(0.05)  # type: ignore[operator]
    except (StepCancelled, cancelled) as exc:
        seen.saw(f"{type(exc).__name__}; ctx.cancelled={ctx.cancelled}")
        raise
    seen.saw("ran to the end")
    return {"finished": True}


@step_handler("typed.beat_asyncio")
async def beat_asyncio(ctx: StepContext) -> dict[str, bool]:
    return await _beat_async(ctx, "asyncio", asyncio.sleep, asyncio.CancelledError)


@step_handler("typed.beat_trio", runtime="trio")
async def beat_trio(ctx: StepContext) -> dict[str, bool]:
    return await _beat_async(ctx, "trio", trio.sleep, trio.Cancelled)
