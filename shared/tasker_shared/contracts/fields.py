"""Checks of JSON payload values; every rejection is a ContractError naming the field.

Each check takes the value, its key, and ``where`` (the dotted path of the enclosing object,
e.g. ``"StepExecutionResult.metadata"``); the message is only built when a value is
rejected, so the happy path stays cheap. `contracts.codec` applies them. A whole payload
is bounded by `load_object`: a value the database connection could not decode
(`limits.Undecodable`) or one nested deeper than `MESSAGE_MAX_DEPTH` is rejected, naming
the field where it goes too deep.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from enum import Enum
from typing import Any, NoReturn, TypeVar
from uuid import UUID

from tasker_shared.domain.limits import DEFAULT_MAX_DEPTH, Undecodable, json_depth
from tasker_shared.errors import ContractError

E = TypeVar("E", bound=Enum)

JsonObject = dict[str, Any]

# A payload wraps the values a client or handler supplies (a context, a result: each bounded
# by DEFAULT_MAX_DEPTH where it enters) in at most a few levels of its own
# (StepExecutionResult.orchestration_metadata.backoff_hint.context is the deepest: 3).
ENVELOPE_DEPTH = 8
MESSAGE_MAX_DEPTH = DEFAULT_MAX_DEPTH + ENVELOPE_DEPTH


def fail(where: str, key: str | None, problem: str) -> NoReturn:
    """Raise a ContractError for ``where.key`` (or ``where`` itself when key is None)."""
    path = where if key is None else f"{where}.{key}"
    raise ContractError(f"{path}: {problem}", details={"field": path})


def kind(value: object) -> str:
    """The JSON type name of `value`, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, Undecodable):
        return f"undecodable JSON ({value.reason})"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def load_object(obj: Any, where: str) -> JsonObject:
    """`obj` as a JSON object nested at most `MESSAGE_MAX_DEPTH` levels; str/bytes are
    parsed as JSON text first."""
    if isinstance(obj, str | bytes | bytearray):
        try:
            obj = json.loads(obj)
        except (ValueError, RecursionError) as exc:
            fail(where, None, f"not valid JSON ({exc.__class__.__name__})")
    if not isinstance(obj, dict):
        fail(where, None, f"expected an object, got {kind(obj)}")
    if json_depth(obj, stop_after=MESSAGE_MAX_DEPTH) > MESSAGE_MAX_DEPTH:
        fail(where, _too_deep_path(obj, MESSAGE_MAX_DEPTH - 1),
             f"nests deeper than {MESSAGE_MAX_DEPTH} levels")
    return obj


def _too_deep_path(obj: JsonObject, budget: int, *, segments: int = 3) -> str | None:
    """The first `segments` keys (or [indexes]) on the way into an over-deep part of `obj`,
    for the error message; `budget` is the depth the first child may have."""
    path = ""
    node: Any = obj
    for _ in range(segments):
        children = node.items() if isinstance(node, dict) else enumerate(node)
        for key, child in children:
            if json_depth(child, stop_after=budget) > budget:
                path += f"[{key}]" if isinstance(key, int) else f"{'.' if path else ''}{key[:64]}"
                node, budget = child, budget - 1
                break
        else:
            break
    return path or None


def as_int(value: object, key: str, where: str, low: int, high: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        fail(where, key, f"expected an integer, got {kind(value)}")
    if not low <= value <= high:
        fail(where, key, f"{value} is outside [{low}, {high}]")
    return value


def as_uuid(value: object, key: str, where: str) -> UUID:
    if not isinstance(value, str):
        fail(where, key, f"expected a UUID string, got {kind(value)}")
    try:
        return UUID(value)
    except ValueError:
        fail(where, key, f"{value[:64]!r} is not a valid UUID")


def as_strings(value: object, key: str, where: str) -> tuple[str, ...]:
    if not isinstance(value, list):
        fail(where, key, f"expected an array of strings, got {kind(value)}")
    for index, item in enumerate(value):
        if not isinstance(item, str):
            fail(where, f"{key}[{index}]", f"expected a string, got {kind(item)}")
    return tuple(value)


def as_string_map(value: object, key: str, where: str) -> dict[str, str]:
    """A JSON object whose values are all strings."""
    if not isinstance(value, dict):
        fail(where, key, f"expected an object, got {kind(value)}")
    for name, item in value.items():
        if not isinstance(item, str):
            fail(where, f"{key}.{name}", f"expected a string, got {kind(item)}")
    return value


def as_timestamp(value: object, key: str, where: str) -> datetime:
    """An RFC 3339 string as an aware datetime in UTC (a naive one is taken to be UTC)."""
    if not isinstance(value, str):
        fail(where, key, f"expected an RFC 3339 timestamp string, got {kind(value)}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        fail(where, key, f"{value[:64]!r} is not an RFC 3339 timestamp")
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        fail(where, key, f"{value[:64]!r} is out of range")


def as_enum(value: object, key: str, where: str, table: Mapping[str | int, E]) -> E:
    """An enum member looked up in `table` by its lower-cased spelling (or by number, when
    `table` has int keys)."""
    found: E | None = None
    if isinstance(value, str):
        found = table.get(value.lower())
    elif isinstance(value, int) and not isinstance(value, bool):
        found = table.get(value)
    else:
        fail(where, key, f"expected a string, got {kind(value)}")
    if found is None:
        allowed = sorted({member.value for member in table.values()})
        fail(where, key, f"unknown value {str(value)[:64]!r}; expected one of {allowed}")
    return found


def format_timestamp(value: datetime) -> str:
    """RFC 3339 in UTC with a ``Z`` suffix; a naive datetime is taken to be UTC."""
    offset = value.utcoffset()
    if offset is None:
        value = value.replace(tzinfo=UTC)
    elif offset:
        value = value.astimezone(UTC)
    return value.isoformat()[:-6] + "Z"
