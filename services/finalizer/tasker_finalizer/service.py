"""The finalization service: consumes `orchestration_task_finalizations` and runs the
readiness safety-net poller, the staleness detector (`staleness.py`) and table upkeep
with retention (`tasker_shared.db.maintenance`)."""

from __future__ import annotations

from collections.abc import Callable

import trio

from tasker_finalizer.handlers import FinalizerHandlers, lock_finalization_messages
from tasker_finalizer.staleness import StalenessDetector
from tasker_finalizer.stalls import watch_checkpoint_stalls
from tasker_shared.contracts.messages import decode_finalization_request
from tasker_shared.contracts.queues import ORCHESTRATION_TASK_FINALIZATIONS
from tasker_shared.db.maintenance import Maintainer
from tasker_shared.runtime.service import Runtime, service_runtime
from tasker_shared.runtime.settings import Settings


async def readiness_loop(rt: Runtime, handlers: FinalizerHandlers) -> None:
    """Evaluate tasks with ready work every `readiness.poll_interval_seconds`."""
    settings = rt.settings.readiness
    while True:
        await trio.sleep(settings.poll_interval_seconds)
        swept = settings.batch_size
        while swept >= settings.batch_size:  # a full batch: more may be waiting
            swept = await rt.db.run(handlers.sweep_ready_tasks, settings.batch_size)
            await trio.lowlevel.checkpoint()


async def serve(
    settings: Settings,
    *,
    on_runtime: Callable[[Runtime], None] | None = None,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    async with service_runtime("finalizer", settings) as rt:
        if on_runtime is not None:
            on_runtime(rt)
        handlers = FinalizerHandlers(processor_uuid=rt.processor_uuid)
        rt.consume(ORCHESTRATION_TASK_FINALIZATIONS, decode=decode_finalization_request,
                   handle=handlers.handle_finalizations, lock=lock_finalization_messages)
        rt.add_background("readiness", lambda: readiness_loop(rt, handlers))
        rt.add_background("checkpoint_stalls", lambda: watch_checkpoint_stalls(rt))
        detector = StalenessDetector(db=rt.db, settings=settings.staleness,
                                     processor_uuid=rt.processor_uuid)
        rt.add_background("staleness", detector.run)
        maintainer = Maintainer(url=rt.url, settings=settings.maintenance)
        rt.add_background("maintenance", maintainer.run)
        rt.extra_details.append(lambda: {"finalizer": {
            "finalized": handlers.finalized, "swept": handlers.swept},
            "staleness": detector.statistics(), "maintenance": maintainer.statistics()})
        await rt.run(task_status=task_status)
