"""Typed readers for JSON payload fields; every rejection is a ContractError naming the field.

Each reader takes the enclosing object, the key, and ``where`` (the dotted path of the
enclosing object, e.g. ``"StepExecutionResult.metadata"``). Absent keys and JSON null
are treated alike. The path string is only built when a value is rejected, so the
happy path stays cheap. A whole payload is bounded by `load_object`: a value the database
connection could not decode (`limits.Undecodable`) or one nested deeper than
`MESSAGE_MAX_DEPTH` is rejected, naming the field where it goes too deep.
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


def req_object(d: JsonObject, key: str, where: str) -> JsonObject:
    value = d.get(key)
    if isinstance(value, dict):
        return value
    if value is None:
        fail(where, key, "is required")
    fail(where, key, f"expected an object, got {kind(value)}")


def opt_object(d: JsonObject, key: str, where: str) -> JsonObject | None:
    value = d.get(key)
    if value is None or isinstance(value, dict):
        return value
    fail(where, key, f"expected an object, got {kind(value)}")


def object_or_empty(d: JsonObject, key: str, where: str) -> JsonObject:
    value = d.get(key)
    if isinstance(value, dict):
        return value
    if value is None:
        return {}
    fail(where, key, f"expected an object, got {kind(value)}")


def req_str(d: JsonObject, key: str, where: str) -> str:
    """A required, non-empty string."""
    value = d.get(key)
    if isinstance(value, str) and value:
        return value
    if value is None:
        fail(where, key, "is required")
    if isinstance(value, str):
        fail(where, key, "must not be empty")
    fail(where, key, f"expected a string, got {kind(value)}")


def opt_str(d: JsonObject, key: str, where: str) -> str | None:
    value = d.get(key)
    if value is None or isinstance(value, str):
        return value
    fail(where, key, f"expected a string, got {kind(value)}")


def str_or(d: JsonObject, key: str, where: str, default: str, *, nonempty: bool = False) -> str:
    value = d.get(key)
    if value is None:
        return default
    if not isinstance(value, str):
        fail(where, key, f"expected a string, got {kind(value)}")
    if nonempty and not value:
        fail(where, key, "must not be empty")
    return value


def req_bool(d: JsonObject, key: str, where: str) -> bool:
    value = d.get(key)
    if isinstance(value, bool):
        return value
    if value is None:
        fail(where, key, "is required")
    fail(where, key, f"expected a boolean, got {kind(value)}")


def bool_or(d: JsonObject, key: str, where: str, default: bool) -> bool:
    value = d.get(key)
    if isinstance(value, bool):
        return value
    if value is None:
        return default
    fail(where, key, f"expected a boolean, got {kind(value)}")


def _int(value: object, key: str, where: str, low: int, high: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        fail(where, key, f"expected an integer, got {kind(value)}")
    if not low <= value <= high:
        fail(where, key, f"{value} is outside [{low}, {high}]")
    return value


def req_int(d: JsonObject, key: str, where: str, low: int, high: int) -> int:
    value = d.get(key)
    if value is None:
        fail(where, key, "is required")
    return _int(value, key, where, low, high)


def opt_int(d: JsonObject, key: str, where: str, low: int, high: int) -> int | None:
    value = d.get(key)
    return None if value is None else _int(value, key, where, low, high)


def int_or(d: JsonObject, key: str, where: str, default: int, low: int, high: int) -> int:
    value = d.get(key)
    return default if value is None else _int(value, key, where, low, high)


def _uuid(value: object, key: str, where: str) -> UUID:
    if not isinstance(value, str):
        fail(where, key, f"expected a UUID string, got {kind(value)}")
    try:
        return UUID(value)
    except ValueError:
        fail(where, key, f"{value[:64]!r} is not a valid UUID")


def req_uuid(d: JsonObject, key: str, where: str) -> UUID:
    value = d.get(key)
    if value is None:
        fail(where, key, "is required")
    return _uuid(value, key, where)


def opt_uuid(d: JsonObject, key: str, where: str) -> UUID | None:
    value = d.get(key)
    return None if value is None else _uuid(value, key, where)


def _strings(value: object, key: str, where: str) -> tuple[str, ...]:
    if not isinstance(value, list):
        fail(where, key, f"expected an array of strings, got {kind(value)}")
    for index, item in enumerate(value):
        if not isinstance(item, str):
            fail(where, f"{key}[{index}]", f"expected a string, got {kind(item)}")
    return tuple(value)


def strings_or_empty(d: JsonObject, key: str, where: str) -> tuple[str, ...]:
    value = d.get(key)
    return () if value is None else _strings(value, key, where)


def opt_strings(d: JsonObject, key: str, where: str) -> tuple[str, ...] | None:
    value = d.get(key)
    return None if value is None else _strings(value, key, where)


def string_map(d: JsonObject, key: str, where: str) -> dict[str, str]:
    """A JSON object whose values are all strings (absent = empty)."""
    value = object_or_empty(d, key, where)
    for name, item in value.items():
        if not isinstance(item, str):
            fail(where, f"{key}.{name}", f"expected a string, got {kind(item)}")
    return value


def _timestamp(value: object, key: str, where: str) -> datetime:
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


def opt_timestamp(d: JsonObject, key: str, where: str) -> datetime | None:
    value = d.get(key)
    return None if value is None else _timestamp(value, key, where)


def timestamp_or_now(d: JsonObject, key: str, where: str) -> datetime:
    value = d.get(key)
    return datetime.now(UTC) if value is None else _timestamp(value, key, where)


def format_timestamp(value: datetime) -> str:
    """RFC 3339 in UTC with a ``Z`` suffix; a naive datetime is taken to be UTC."""
    offset = value.utcoffset()
    if offset is None:
        value = value.replace(tzinfo=UTC)
    elif offset:
        value = value.astimezone(UTC)
    return value.isoformat()[:-6] + "Z"


def enum_or(
    d: JsonObject, key: str, where: str, table: Mapping[str | int, E], default: E | None
) -> E:
    """An enum value looked up case-insensitively in `table` (which may have int keys too).

    A None default makes the field required.
    """
    value = d.get(key)
    if value is None:
        if default is None:
            fail(where, key, "is required")
        return default
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
