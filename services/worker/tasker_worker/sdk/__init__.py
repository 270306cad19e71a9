"""The Python worker SDK: step context, results, handler registration, batch helpers, errors.

`async def` handlers run on asyncio by default (`runtime="trio"` / `@trio_handler` for
Trio); sync handlers run in threads and learn of cancellation through `StepContext`.
Typed handlers declare pydantic models for the task context and dependency results
(`tasker_worker.sdk.typed`); long handlers report progress and keep their claim with
`ctx.heartbeat(...)` / `await ctx.aheartbeat(...)`.
Domain events: `@subscribe("order.*")` subscribers run in the worker for fast and broadcast
events; `EventPublisher` / `register_publisher` for a declaration's `publisher:`
(`tasker_worker.sdk.events`).
Importing the SDK changes no global state (no event loop policy is installed)."""

from tasker_worker.sdk.batching import BatchAggregation, aggregate_batch_results, cursor_ranges
from tasker_worker.sdk.cancellation import CancelToken
from tasker_worker.sdk.context import BatchWorkerContext, StepContext
from tasker_worker.sdk.errors import (
    BusinessLogicError,
    ConfigurationError,
    HandlerNotFound,
    NotFoundError,
    PermanentError,
    RateLimitError,
    RetryableError,
    ServiceUnavailableError,
    StepCancelled,
    StepError,
    ValidationError,
)
from tasker_worker.sdk.events import (
    DomainEvent,
    EventPublisher,
    StepEventContext,
    register_publisher,
    subscribe,
)
from tasker_worker.sdk.handlers import (
    HandlerRegistry,
    HandlerReturn,
    HandlerRuntime,
    ResolvedHandler,
    StepHandler,
    coerce_result,
    default_registry,
    resolve,
    step_handler,
    trio_handler,
)
from tasker_worker.sdk.heartbeat import HeartbeatReport
from tasker_worker.sdk.results import (
    StepResult,
    batches,
    checkpoint,
    decision,
    failure,
    failure_from_exception,
    no_batches,
    no_branches,
    success,
)
from tasker_worker.sdk.typed import Dependency, TaskInput, dependency, task_input

__all__ = [
    "BatchAggregation",
    "BatchWorkerContext",
    "BusinessLogicError",
    "CancelToken",
    "ConfigurationError",
    "Dependency",
    "DomainEvent",
    "EventPublisher",
    "HandlerNotFound",
    "HandlerRegistry",
    "HandlerReturn",
    "HandlerRuntime",
    "HeartbeatReport",
    "NotFoundError",
    "PermanentError",
    "RateLimitError",
    "ResolvedHandler",
    "RetryableError",
    "ServiceUnavailableError",
    "StepCancelled",
    "StepContext",
    "StepError",
    "StepEventContext",
    "StepHandler",
    "StepResult",
    "TaskInput",
    "ValidationError",
    "aggregate_batch_results",
    "batches",
    "checkpoint",
    "coerce_result",
    "cursor_ranges",
    "decision",
    "default_registry",
    "dependency",
    "failure",
    "failure_from_exception",
    "no_batches",
    "no_branches",
    "register_publisher",
    "resolve",
    "step_handler",
    "subscribe",
    "success",
    "task_input",
    "trio_handler",
]
