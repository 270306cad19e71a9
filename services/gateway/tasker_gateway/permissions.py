"""The permission vocabulary (SPEC 7.4), `resource:*` wildcards, and what each RPC needs."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

PERMISSIONS: Final[frozenset[str]] = frozenset({
    "tasks:create", "tasks:read", "tasks:list", "tasks:cancel", "tasks:context_read",
    "steps:read", "steps:resolve",
    "dlq:read", "dlq:update", "dlq:stats",
    "templates:read", "templates:validate",
    "system:config_read", "system:handlers_read", "system:analytics_read",
    "worker:config_read", "worker:templates_read",
})
RESOURCES: Final[frozenset[str]] = frozenset(p.split(":", 1)[0] for p in PERMISSIONS)
WILDCARDS: Final[frozenset[str]] = frozenset(f"{r}:*" for r in RESOURCES)

TASKS_CREATE = "tasks:create"
TASKS_READ = "tasks:read"
TASKS_LIST = "tasks:list"
TASKS_CANCEL = "tasks:cancel"
TASKS_CONTEXT = "tasks:context_read"
STEPS_READ = "steps:read"
STEPS_RESOLVE = "steps:resolve"
DLQ_READ = "dlq:read"
DLQ_UPDATE = "dlq:update"
DLQ_STATS = "dlq:stats"
TEMPLATES_READ = "templates:read"
CONFIG_READ = "system:config_read"
ANALYTICS_READ = "system:analytics_read"


def is_known(permission: str) -> bool:
    """True for a vocabulary permission or a `resource:*` wildcard (no global `*`)."""
    return permission in PERMISSIONS or permission in WILDCARDS


def unknown(permissions: Iterable[str]) -> list[str]:
    return [p for p in permissions if not is_known(p)]


def grants(held: frozenset[str], needed: str) -> bool:
    """True when `held` contains `needed` or the wildcard of its resource."""
    if needed in held:
        return True
    resource = needed.split(":", 1)[0]
    return f"{resource}:*" in held


_SERVICE = "/tasker.v1."

# Fully qualified gRPC method -> permission. Methods not listed here and not public are
# refused, so a new RPC cannot go out unprotected by accident.
GRPC_PERMISSIONS: Final[dict[str, str]] = {
    f"{_SERVICE}TaskService/CreateTask": TASKS_CREATE,
    f"{_SERVICE}TaskService/CreateTasks": TASKS_CREATE,
    f"{_SERVICE}TaskService/GetTask": TASKS_READ,
    f"{_SERVICE}TaskService/ListTasks": TASKS_LIST,
    f"{_SERVICE}TaskService/CancelTask": TASKS_CANCEL,
    f"{_SERVICE}TaskService/GetTaskContext": TASKS_CONTEXT,
    f"{_SERVICE}TaskService/GetTaskSummary": TASKS_READ,
    f"{_SERVICE}TaskService/GetTaskRequestOutcome": TASKS_READ,
    f"{_SERVICE}TaskService/StreamTaskStatus": TASKS_READ,
    f"{_SERVICE}StepService/GetStep": STEPS_READ,
    f"{_SERVICE}StepService/ListSteps": STEPS_READ,
    f"{_SERVICE}StepService/ResolveStep": STEPS_RESOLVE,
    f"{_SERVICE}StepService/GetStepAudit": STEPS_READ,
    f"{_SERVICE}TemplateService/ListTemplates": TEMPLATES_READ,
    f"{_SERVICE}TemplateService/GetTemplate": TEMPLATES_READ,
    f"{_SERVICE}AnalyticsService/GetPerformanceMetrics": ANALYTICS_READ,
    f"{_SERVICE}AnalyticsService/GetBottleneckAnalysis": ANALYTICS_READ,
    f"{_SERVICE}DlqService/ListEntries": DLQ_READ,
    f"{_SERVICE}DlqService/GetEntryByTask": DLQ_READ,
    f"{_SERVICE}DlqService/UpdateInvestigation": DLQ_UPDATE,
    f"{_SERVICE}DlqService/GetStats": DLQ_STATS,
    f"{_SERVICE}DlqService/GetInvestigationQueue": DLQ_READ,
    f"{_SERVICE}DlqService/GetStalenessMonitoring": DLQ_READ,
    f"{_SERVICE}ConfigService/GetConfig": CONFIG_READ,
}

GRPC_PUBLIC_PREFIXES: Final[tuple[str, ...]] = (
    f"{_SERVICE}HealthService/",
    "/grpc.health.v1.Health/",
    "/grpc.reflection.",
)


def grpc_permission(method: str) -> str | None:
    """The permission `method` needs; None for public methods. KeyError if unknown."""
    if method.startswith(GRPC_PUBLIC_PREFIXES):
        return None
    return GRPC_PERMISSIONS[method]
