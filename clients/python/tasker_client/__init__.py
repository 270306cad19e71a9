"""Typed Python client for the Tasker gateway (gRPC): sync, asyncio and Trio flavours.

    async with AioTaskerClient("localhost:9190", token=jwt) as client:    # asyncio
        created = await client.create_task("linear_workflow", namespace="examples",
                                           version="1.0.0", context={"even_number": 2})
        async with aclosing(client.watch_task(created.task_uuid)) as updates:
            async for update in updates: ...

    with SyncTaskerClient() as client:                                    # blocking, any thread
        task = client.get_task(task_uuid)

    async with TaskerClient() as client: ...      # Trio: pip install 'tasker-client[trio]'

Address and credentials come from the arguments, else TASKER_GATEWAY_ADDRESS and
TASKER_ORCHESTRATION_AUTH_TOKEN > TASKER_AUTH_TOKEN > TASKER_API_KEY (+ TASKER_API_KEY_HEADER)
> a token signed with TASKER_JWT_PRIVATE_KEY_PATH (the `signing` extra). Every call has a
deadline (`timeout`, per call `call_timeout`) covering its retries; UNAVAILABLE is retried
with exponential backoff, at most `RetryPolicy.max_attempts` times. Failures raise
tasker_client.errors classes (NotFoundError, ConflictError, ValidationError, AuthError,
PermissionDenied, TransitionRejected, Unavailable, DeadlineExceeded, RpcError).

Importing this package changes no global state and loads each flavour only when first used:
the sync and asyncio flavours never import Trio; messages and enums are in
`tasker_client.proto.tasker.v1`, generated from the repository's proto/ contract.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from tasker_client.errors import (
    AuthError,
    ConfigError,
    ConflictError,
    DeadlineExceeded,
    NotFoundError,
    PermissionDenied,
    RpcError,
    TaskerError,
    TransitionRejected,
    Unavailable,
    ValidationError,
)

if TYPE_CHECKING:
    from tasker_client.aio_client import AioTaskerClient
    from tasker_client.calls.batch import TaskSpec
    from tasker_client.config import (
        ClientConfig,
        Credentials,
        Endpoint,
        RetryPolicy,
        parse_address,
        resolve_config,
    )
    from tasker_client.convert import from_struct, json_value, label, parse_enum, to_jsonable
    from tasker_client.results import (
        CreateTaskResult,
        StepResolution,
        TaskContext,
        TaskOutcome,
        TaskPage,
        TemplateCatalog,
        is_terminal,
    )
    from tasker_client.sync_client import SyncTaskerClient
    from tasker_client.trio_client import TaskerClient

# name -> module that defines it, imported on first access (PEP 562).
_LAZY = {
    "AioTaskerClient": "aio_client",
    "SyncTaskerClient": "sync_client",
    "TaskerClient": "trio_client",
    "TaskSpec": "calls.batch",
    **dict.fromkeys(
        ("ClientConfig", "Credentials", "Endpoint", "RetryPolicy", "parse_address",
         "resolve_config"), "config"),
    **dict.fromkeys(("from_struct", "json_value", "label", "parse_enum", "to_jsonable"),
                    "convert"),
    **dict.fromkeys(
        ("CreateTaskResult", "StepResolution", "TaskContext", "TaskOutcome", "TaskPage",
         "TemplateCatalog", "is_terminal"), "results"),
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'tasker_client' has no attribute {name!r}")
    value = getattr(import_module(f"tasker_client.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "AioTaskerClient",
    "AuthError",
    "ClientConfig",
    "ConfigError",
    "ConflictError",
    "CreateTaskResult",
    "Credentials",
    "DeadlineExceeded",
    "Endpoint",
    "NotFoundError",
    "PermissionDenied",
    "RetryPolicy",
    "RpcError",
    "StepResolution",
    "SyncTaskerClient",
    "TaskContext",
    "TaskOutcome",
    "TaskPage",
    "TaskSpec",
    "TaskerClient",
    "TaskerError",
    "TemplateCatalog",
    "TransitionRejected",
    "Unavailable",
    "ValidationError",
    "from_struct",
    "is_terminal",
    "json_value",
    "label",
    "parse_address",
    "parse_enum",
    "resolve_config",
    "to_jsonable",
]
