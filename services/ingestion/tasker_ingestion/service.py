"""The ingestion service: consumes `orchestration_task_requests`."""

from __future__ import annotations

from collections.abc import Callable

import trio

from tasker_ingestion.handlers import IngestionHandlers, lock_request_messages
from tasker_shared.contracts.messages import decode_task_request_message
from tasker_shared.contracts.queues import ORCHESTRATION_TASK_REQUESTS
from tasker_shared.runtime.service import Runtime, service_runtime
from tasker_shared.runtime.settings import Settings


async def serve(
    settings: Settings,
    *,
    on_runtime: Callable[[Runtime], None] | None = None,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    async with service_runtime("ingestion", settings) as rt:
        if on_runtime is not None:
            on_runtime(rt)
        handlers = IngestionHandlers(processor_uuid=rt.processor_uuid,
                                     environment=settings.environment)
        rt.consume(ORCHESTRATION_TASK_REQUESTS, decode=decode_task_request_message,
                   handle=handlers.handle_task_requests, lock=lock_request_messages)
        rt.extra_details.append(lambda: {"ingestion": {
            "created": handlers.created, "duplicates": handlers.duplicates,
            "invalid": handlers.invalid}})
        await rt.run(task_status=task_status)
