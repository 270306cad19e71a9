"""Queue names and the worker-queue naming scheme (SPEC 1.3)."""

from __future__ import annotations

import re
from typing import Final, TypeGuard

from tasker_shared.errors import ContractError

ORCHESTRATION_TASK_REQUESTS: Final = "orchestration_task_requests"
ORCHESTRATION_STEP_RESULTS: Final = "orchestration_step_results"
ORCHESTRATION_TASK_FINALIZATIONS: Final = "orchestration_task_finalizations"
ORCHESTRATION_QUEUES: Final[tuple[str, ...]] = (
    ORCHESTRATION_TASK_REQUESTS,
    ORCHESTRATION_STEP_RESULTS,
    ORCHESTRATION_TASK_FINALIZATIONS,
)

ORCHESTRATION_NAMESPACE: Final = "orchestration"
WORKER_NAMESPACE: Final = "worker"
DEFAULT_NAMESPACE: Final = "default"

# PGMQ caps queue names at 47 characters; the longest derived name,
# "{namespace}_domain_events_dlq", adds 18, which leaves 29 for the namespace.
MAX_QUEUE_NAME_LENGTH: Final = 47
MAX_NAMESPACE_LENGTH: Final = 29

_NAMESPACE_RE: Final = re.compile(rf"[A-Za-z0-9_]{{1,{MAX_NAMESPACE_LENGTH}}}")
_WORKER_QUEUE_RE: Final = re.compile(r"worker_(.*)_queue", re.DOTALL)
_PLAIN_QUEUE_RE: Final = re.compile(r"([A-Za-z][A-Za-z0-9_]*)_queue")


def is_valid_namespace(namespace: object) -> TypeGuard[str]:
    """True when `namespace` is 1 to 29 characters of [A-Za-z0-9_]."""
    return isinstance(namespace, str) and _NAMESPACE_RE.fullmatch(namespace) is not None


def validate_namespace(namespace: object) -> str:
    """Return `namespace` unchanged, or raise ContractError when it cannot name a queue."""
    if is_valid_namespace(namespace):
        return namespace
    raise ContractError(
        f"namespace: {namespace!r} must be 1 to {MAX_NAMESPACE_LENGTH} characters of [A-Za-z0-9_]",
        details={"field": "namespace"},
    )


def worker_queue(namespace: str) -> str:
    """The step queue of a namespace: ``worker_{namespace}_queue``."""
    return f"{WORKER_NAMESPACE}_{validate_namespace(namespace)}_queue"


def is_orchestration_queue(queue_name: str) -> bool:
    """True for the three orchestration queues."""
    return queue_name in ORCHESTRATION_QUEUES


def namespace_of(queue_name: str) -> str:
    """The NOTIFY namespace of a queue; agrees with SQL ``tasker.extract_queue_namespace``.

    ``orchestration*`` gives "orchestration"; ``worker_X_queue`` gives X ("worker" when X
    is empty); ``X_queue`` with X an identifier gives X; anything else gives "default".
    """
    if queue_name.startswith(ORCHESTRATION_NAMESPACE):
        return ORCHESTRATION_NAMESPACE
    match = _WORKER_QUEUE_RE.fullmatch(queue_name)
    if match is not None:
        return match.group(1) or WORKER_NAMESPACE
    match = _PLAIN_QUEUE_RE.fullmatch(queue_name)
    if match is not None:
        return match.group(1)
    return DEFAULT_NAMESPACE
