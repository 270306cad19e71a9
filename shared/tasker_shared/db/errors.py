"""Translate psycopg errors into Tasker's error classes, once, at the database boundary."""

from __future__ import annotations

import psycopg
from psycopg import errors as pg_errors

from tasker_shared.errors import (
    ConflictError,
    NotFoundError,
    StoreError,
    StoreTimeout,
    StoreUnavailable,
    TaskerError,
    TransitionRejected,
    ValidationError,
)

_RETRYABLE_CLASSES = ("08", "40", "53", "57P")  # connection, rollback, resources, shutdown


def translate(exc: BaseException) -> TaskerError:
    """The Tasker error for a driver error (or `exc` itself if it is already ours)."""
    if isinstance(exc, TaskerError):
        return exc
    if isinstance(exc, psycopg.OperationalError) and not isinstance(exc, psycopg.errors.QueryCanceled):
        sqlstate = getattr(exc, "sqlstate", None)
        if sqlstate is None or sqlstate.startswith(("08", "57P")):
            return StoreUnavailable(f"database unavailable: {exc}", retryable=True, sqlstate=sqlstate)
    if isinstance(exc, psycopg.Error):
        sqlstate = exc.sqlstate or ""
        message = (exc.diag.message_primary if exc.diag else None) or str(exc)
        if isinstance(exc, pg_errors.UniqueViolation):
            return ConflictError(message, details={"constraint": exc.diag.constraint_name})
        if sqlstate == "TK001":
            return TransitionRejected(message)
        if sqlstate == "TK404":
            return NotFoundError(message)
        if sqlstate == "TK400":
            return ValidationError(message)
        if isinstance(exc, pg_errors.QueryCanceled):
            return StoreTimeout(f"statement cancelled or timed out: {message}", retryable=True,
                                sqlstate=sqlstate)
        if isinstance(exc, (pg_errors.CheckViolation, pg_errors.ForeignKeyViolation,
                            pg_errors.NotNullViolation, pg_errors.InvalidTextRepresentation)):
            return ValidationError(message, details={"sqlstate": sqlstate})
        retryable = sqlstate.startswith(_RETRYABLE_CLASSES)
        return StoreError(message, retryable=retryable, sqlstate=sqlstate or None)
    return StoreError(f"unexpected database failure: {exc!r}")
