"""Typed Python client for the Tasker gateway (gRPC): Trio, asyncio and blocking flavours."""

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
