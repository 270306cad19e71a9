"""The project's error hierarchy: one root, categories with a `retryable` flag.

The classes a gateway client also sees (the root, ConfigError, ValidationError, NotFoundError,
ConflictError, TransitionRejected, Unavailable, AuthError, PermissionDenied) are defined by
the light client distribution, `tasker_client.errors`, and re-exported here, so server and
client code catch one hierarchy; the dependency runs one way (server -> client).
"""

from __future__ import annotations

from typing import Any

from tasker_client.errors import (
    AuthError,
    ConfigError,
    ConflictError,
    NotFoundError,
    PermissionDenied,
    TaskerError,
    TransitionRejected,
    Unavailable,
    ValidationError,
)

__all__ = [
    "AuthError",
    "ConfigError",
    "ConflictError",
    "ContractError",
    "NotFoundError",
    "PermissionDenied",
    "StoreError",
    "StoreTimeout",
    "StoreUnavailable",
    "TaskAlreadyFinished",
    "TaskerError",
    "TemplateError",
    "TransitionRejected",
    "Unavailable",
    "ValidationError",
]


class TemplateError(ValidationError):
    """A task template failed to parse or validate; `problems` lists every finding."""

    code = "template_invalid"

    def __init__(self, message: str, *, problems: list[str] | None = None) -> None:
        super().__init__(message, details={"problems": list(problems or [message])})
        self.problems: list[str] = list(problems or [message])


class ContractError(TaskerError):
    """A queue message or protocol payload does not match the contract."""

    code = "contract_error"


class TaskAlreadyFinished(TransitionRejected):
    """An action that needs an unfinished task (cancel) was asked of a finished one: a bad
    request in REST terms (SPEC: cancel answers 400 when the task is already complete)."""

    code = "task_already_finished"


class StoreError(TaskerError):
    """The database failed; `retryable` says whether trying again may help."""

    code = "store_error"

    def __init__(
        self,
        message: str,
        *,
        retryable: bool = False,
        sqlstate: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message, details=details)
        self.retryable = retryable
        self.sqlstate = sqlstate


class StoreTimeout(StoreError):
    """A statement ran past its timeout or was cancelled."""

    code = "store_timeout"


class StoreUnavailable(StoreError):
    """The database cannot be reached."""

    code = "store_unavailable"
