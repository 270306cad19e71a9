"""Bounds on JSON values that cross a boundary (request contexts, step results, queue
messages): nesting depth and encoded size, checked without recursion so that hostile input
cannot exhaust the stack or the memory of the process that checks it.

One way to do it everywhere: entry points call `check_json`; code that decodes JSON text
from outside calls `loads_bounded`; the database connection decodes json/jsonb columns with
`loads_or_undecodable`, which never raises (an undecodable value becomes an `Undecodable`
that the consumer sets aside with its reason)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from tasker_shared.errors import ValidationError

# Deep enough for any real document; far below where recursive encoders and decoders
# (json, protobuf, Python's repr) run out of stack.
DEFAULT_MAX_DEPTH = 64
# One context or result; REST bodies are capped separately (1 MB by default).
DEFAULT_MAX_BYTES = 1_048_576


class JsonLimitError(ValidationError):
    """A JSON value breaks a depth or size bound."""

    code = "payload_too_large"


@dataclass(frozen=True, slots=True)
class Undecodable:
    """A JSON value that could not be decoded (too deep, malformed); `reason` says why."""

    reason: str


def json_depth(value: Any, *, stop_after: int | None = None) -> int:
    """The nesting depth of a decoded JSON value (a scalar is 0, `[]`/`{}` are 1),
    computed iteratively, one level at a time. With `stop_after`, returns as soon as the
    depth exceeds it."""
    deepest = 0
    level: list[Any] = [value]
    while True:
        below: list[Any] = []
        containers = False
        for item in level:
            if isinstance(item, dict):
                below.extend(item.values())
                containers = True
            elif isinstance(item, (list, tuple)):
                below.extend(item)
                containers = True
        if not containers:
            return deepest
        deepest += 1
        if stop_after is not None and deepest > stop_after:
            return deepest
        level = below


def check_json(
    value: Any,
    *,
    what: str,
    max_depth: int = DEFAULT_MAX_DEPTH,
    max_bytes: int | None = DEFAULT_MAX_BYTES,
) -> None:
    """Raise `JsonLimitError` naming `what` when `value` nests deeper than `max_depth` or
    encodes to more than `max_bytes` bytes of JSON."""
    depth = json_depth(value, stop_after=max_depth)
    if depth > max_depth:
        raise JsonLimitError(
            f"{what} nests deeper than {max_depth} levels",
            details={"field": what, "max_depth": max_depth},
        )
    if max_bytes is not None:
        size = len(json.dumps(value, separators=(",", ":"), default=str).encode())
        if size > max_bytes:
            raise JsonLimitError(
                f"{what} is {size} bytes of JSON; at most {max_bytes} are allowed",
                details={"field": what, "max_bytes": max_bytes, "bytes": size},
            )


def loads_bounded(
    data: str | bytes, *, what: str, max_depth: int = DEFAULT_MAX_DEPTH
) -> Any:
    """Decode JSON text from outside; malformed or too deep input raises
    `ValidationError` (never `RecursionError`)."""
    try:
        value = json.loads(data)
    except RecursionError:
        raise JsonLimitError(f"{what} nests deeper than {max_depth} levels",
                             details={"field": what, "max_depth": max_depth}) from None
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        raise ValidationError(f"{what} is not valid JSON: {exc}",
                              details={"field": what}) from None
    check_json(value, what=what, max_depth=max_depth, max_bytes=None)
    return value


def loads_or_undecodable(data: str | bytes) -> Any:
    """The database connection's JSON loader: like `json.loads`, but a value that cannot
    be decoded (nested past the interpreter's recursion limit, malformed) becomes an
    `Undecodable` instead of failing the whole fetch it is part of."""
    try:
        return json.loads(data)
    except RecursionError:
        return Undecodable("JSON nested too deeply to decode")
    except ValueError as exc:
        return Undecodable(f"invalid JSON: {exc}")
