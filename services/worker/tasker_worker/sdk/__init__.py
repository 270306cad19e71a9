"""The Python worker SDK: step context, results, handler registration, batch helpers, errors.

`async def` handlers run on asyncio by default (`runtime="trio"` / `@trio_handler` for
Trio); sync handlers run in threads and learn of cancellation through `StepContext`.
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

__all__ = [
    "BatchAggregation",
    "BatchWorkerContext",
    "BusinessLogicError",
    "CancelToken",
    "ConfigurationError",
    "HandlerNotFound",
    "HandlerRegistry",
    "HandlerReturn",
    "HandlerRuntime",
    "NotFoundError",
    "PermanentError",
    "RateLimitError",
    "ResolvedHandler",
    "RetryableError",
    "ServiceUnavailableError",
    "StepCancelled",
    "StepContext",
    "StepError",
    "StepHandler",
    "StepResult",
    "ValidationError",
    "aggregate_batch_results",
    "batches",
    "checkpoint",
    "coerce_result",
    "cursor_ranges",
    "decision",
    "default_registry",
    "failure",
    "failure_from_exception",
    "no_batches",
    "no_branches",
    "resolve",
    "step_handler",
    "success",
    "trio_handler",
]
