"""Typed Python client for the Tasker gateway (gRPC): Trio, asyncio and blocking flavours.

    async with TaskerClient("localhost:9190", token=jwt) as client:      # Trio
        created = await client.create_task("linear_workflow", namespace="examples",
                                           version="1.0.0", context={"even_number": 2})
        async with aclosing(client.watch_task(created.task_uuid)) as updates:
            async for update in updates: ...

    with SyncTaskerClient() as client:                                    # blocking, any thread
        task = client.get_task(task_uuid)

Address and credentials come from the arguments, else TASKER_GATEWAY_ADDRESS and
TASKER_ORCHESTRATION_AUTH_TOKEN > TASKER_AUTH_TOKEN > TASKER_API_KEY (+ TASKER_API_KEY_HEADER)
> a token signed with TASKER_JWT_PRIVATE_KEY_PATH. Every call has a deadline (`timeout`,
per call `call_timeout`) covering its retries; UNAVAILABLE is retried with exponential
backoff, at most `RetryPolicy.max_attempts` times. Failures raise tasker_shared.errors
classes (NotFoundError, ConflictError, ValidationError, AuthError, PermissionDenied,
TransitionRejected, Unavailable) or DeadlineExceeded / RpcError.
"""

from __future__ import annotations

from tasker_client.aio_client import AioTaskerClient
from tasker_client.async_client import TaskerClient
from tasker_client.config import (
    ClientConfig,
    Credentials,
    Endpoint,
    RetryPolicy,
    parse_address,
    resolve_config,
)
from tasker_client.convert import from_struct, label, parse_enum, to_jsonable
from tasker_client.errors import DeadlineExceeded, RpcError
from tasker_client.results import (
    CreateTaskResult,
    StepResolution,
    TaskContext,
    TaskPage,
    TemplateCatalog,
    is_terminal,
)
from tasker_client.sync_client import SyncTaskerClient

__all__ = [
    "AioTaskerClient",
    "ClientConfig",
    "CreateTaskResult",
    "Credentials",
    "DeadlineExceeded",
    "Endpoint",
    "RetryPolicy",
    "RpcError",
    "StepResolution",
    "SyncTaskerClient",
    "TaskContext",
    "TaskPage",
    "TaskerClient",
    "TemplateCatalog",
    "from_struct",
    "is_terminal",
    "label",
    "parse_address",
    "parse_enum",
    "resolve_config",
    "to_jsonable",
]
