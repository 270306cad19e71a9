"""The project's error hierarchy: one root, categories with a `retryable` flag."""

from __future__ import annotations

from typing import Any


class TaskerError(Exception):
    """Root of every error Tasker raises on purpose."""

    retryable: bool = False
    code: str = "internal"

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = dict(details or {})

    def __str__(self) -> str:
        return self.message


class ConfigError(TaskerError):
    """Settings or environment are invalid or incomplete."""

    code = "config_error"


class ValidationError(TaskerError):
    """Input (a request, a template, a message) is malformed or breaks a rule."""

    code = "validation_error"


class TemplateError(ValidationError):
    """A task template failed to parse or validate; `problems` lists every finding."""

    code = "template_invalid"

    def __init__(self, message: str, *, problems: list[str] | None = None) -> None:
        super().__init__(message, details={"problems": list(problems or [message])})
        self.problems: list[str] = list(problems or [message])


class ContractError(TaskerError):
    """A queue message or protocol payload does not match the contract."""

    code = "contract_error"


class NotFoundError(TaskerError):
    """The named entity does not exist."""

    code = "not_found"


class ConflictError(TaskerError):
    """A uniqueness rule was violated (duplicate task identity, etc.)."""

    code = "conflict"


class TransitionRejected(TaskerError):
    """A state transition was refused (unexpected current state or not allowed)."""

    code = "transition_rejected"


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


class Unavailable(TaskerError):
    """The system refuses work for now (backpressure, draining); retry after `retry_after`."""

    code = "unavailable"
    retryable = True

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message, details={"retry_after_seconds": retry_after})
        self.retry_after = retry_after


class AuthError(TaskerError):
    """Missing or invalid credentials."""

    code = "unauthenticated"


class PermissionDenied(TaskerError):
    """Valid credentials lacking the required permission."""

    code = "permission_denied"
