"""The result processing service: consumes `orchestration_step_results`."""

from __future__ import annotations

from collections.abc import Callable

import trio

from tasker_results.handlers import ResultHandlers, lock_result_messages
from tasker_shared.contracts.messages import decode_step_message
from tasker_shared.contracts.queues import ORCHESTRATION_STEP_RESULTS
from tasker_shared.runtime.service import Runtime, service_runtime
from tasker_shared.runtime.settings import Settings


async def serve(
    settings: Settings,
    *,
    on_runtime: Callable[[Runtime], None] | None = None,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    async with service_runtime("results", settings) as rt:
        if on_runtime is not None:
            on_runtime(rt)
        handlers = ResultHandlers(processor_uuid=rt.processor_uuid, settings=settings)
        rt.consume(ORCHESTRATION_STEP_RESULTS, decode=decode_step_message,
                   handle=handlers.handle_step_results, lock=lock_result_messages)
        rt.extra_details.append(lambda: {"results": {
            "applied": handlers.applied, "duplicates": handlers.duplicates,
            "finalized": handlers.finalized}})
        await rt.run(task_status=task_status)
