"""Task identity hashing for deduplication (SPEC §3.4).

Canonical context JSON: object keys sorted recursively, no whitespace, `ensure_ascii=False`,
tuples as lists, and numbers normalised so equal values hash the same: a float with an
integral value becomes that integer (`1.0` → `1`, `-0.0` → `0`, `1e20` → `100000000000000000000`)
and other floats keep Python's shortest round-trip form. Booleans stay booleans. NaN, the
infinities, non-string object keys and non-JSON values are rejected with ValidationError.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable
from enum import StrEnum
from typing import Any
from uuid import UUID

from tasker_shared.errors import ValidationError

__all__ = ["IdentityStrategy", "canonical_json", "identity_hash"]


class IdentityStrategy(StrEnum):
    """How a named task derives the identity of a new task (`named_tasks.identity_strategy`)."""

    STRICT = "strict"
    CALLER_PROVIDED = "caller_provided"
    ALWAYS_UNIQUE = "always_unique"


def _normalise(value: Any) -> Any:
    """A copy of `value` with keys and numbers in canonical form; ValidationError if not JSON."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValidationError(f"context holds a non-finite number: {value!r}")
        return int(value) if value.is_integer() else value
    if isinstance(value, dict):
        normalised: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValidationError(f"context object keys must be strings, got {key!r}")
            normalised[key] = _normalise(item)
        return normalised
    if isinstance(value, list | tuple):
        return [_normalise(item) for item in value]
    raise ValidationError(f"context holds a value that is not JSON: {type(value).__name__}")


def canonical_json(value: Any) -> str:
    """The canonical JSON text of `value` (see the module docstring)."""
    return json.dumps(
        _normalise(value),
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
    )


def _digest(*parts: str) -> str:
    """sha256 hex digest of the parts, each length-prefixed so no two splits collide."""
    hasher = hashlib.sha256()
    for part in parts:
        encoded = part.encode("utf-8")
        hasher.update(f"{len(encoded)}:".encode("ascii"))
        hasher.update(encoded)
    return hasher.hexdigest()


def identity_hash(
    *,
    strategy: str,
    named_task_uuid: UUID,
    context: Any,
    idempotency_key: str | None,
    new_uuid: Callable[[], UUID],
) -> str:
    """The task's `identity_hash`: a 64-char hex digest, or a fresh UUID for always_unique.

    An idempotency key overrides the strategy. An empty key is a ValidationError, as is an
    unknown strategy or caller_provided without a key.
    """
    if idempotency_key is not None:
        if not idempotency_key:
            raise ValidationError("idempotency_key must not be empty")
        return _digest("idempotency_key", str(named_task_uuid), idempotency_key)
    try:
        chosen = IdentityStrategy(strategy)
    except ValueError:
        raise ValidationError(f"unknown identity strategy: {strategy!r}") from None
    if chosen is IdentityStrategy.STRICT:
        return _digest("strict", str(named_task_uuid), canonical_json(context))
    if chosen is IdentityStrategy.CALLER_PROVIDED:
        raise ValidationError("idempotency_key is required for caller_provided identity strategy")
    return str(new_uuid())
