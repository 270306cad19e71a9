"""Conversions between Python values and the generated messages (Struct, enums, UUIDs, JSON).

JSON objects travel as JSON text in the `*_json` fields (exact integers of any size); the
Struct fields beside them (numbers as doubles) are read only from a gateway that predates
the text fields."""

from __future__ import annotations

import json
from collections.abc import Mapping
from enum import IntEnum
from typing import Any, TypeVar
from uuid import UUID

import betterproto2

from tasker_client.errors import ValidationError
from tasker_client.proto.google.protobuf import Struct

E = TypeVar("E", bound=IntEnum)

UuidLike = str | UUID


def to_struct(value: Mapping[str, Any] | None) -> Any:
    """A google.protobuf.Struct from a JSON-like mapping (None stays None)."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ValidationError(f"expected a JSON object, got {type(value).__name__}")
    try:
        return Struct.from_dict(dict(value))
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"not JSON-serialisable: {exc}") from exc


def to_json_text(value: Mapping[str, Any] | None) -> str | None:
    """A JSON object as JSON text for a `*_json` field (None stays None)."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ValidationError(f"expected a JSON object, got {type(value).__name__}")
    try:
        return json.dumps(dict(value), separators=(",", ":"), ensure_ascii=False,
                          allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"not JSON-serialisable: {exc}") from exc


def json_value(text: str, struct: Any) -> dict[str, Any]:
    """A JSON object of a reply: its `*_json` text (exact), else its Struct (older gateway)."""
    if text:
        value = json.loads(text)
        if isinstance(value, dict):
            return value
    return from_struct(struct)


def from_struct(value: Any) -> dict[str, Any]:
    """A Struct (or None) as a plain dict; integral numbers come back as ints."""
    if value is None:
        return {}
    result: dict[str, Any] = _integral(value.to_dict())
    return result


def _integral(value: Any) -> Any:
    # Struct numbers are doubles on the wire: 2 arrives as 2.0.
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if isinstance(value, dict):
        return {key: _integral(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_integral(item) for item in value]
    return value


def uuid_text(value: UuidLike, what: str) -> str:
    """`value` as a canonical UUID string; ValidationError naming `what` otherwise."""
    if isinstance(value, UUID):
        return str(value)
    try:
        return str(UUID(str(value)))
    except ValueError:
        raise ValidationError(f"{what}: {str(value)[:64]!r} is not a valid UUID") from None


def enum_prefix(cls: type[IntEnum]) -> str:
    """The proto prefix of an enum's value names, e.g. "TASK_STATE_"."""
    for member in cls:
        proto_name = getattr(member, "proto_name", None)
        if proto_name and proto_name.endswith(member.name):
            return str(proto_name[: len(proto_name) - len(member.name)])
    return ""  # pragma: no cover - every generated enum has proto names


def parse_enum(cls: type[E], value: E | str | int) -> E:
    """An enum member from itself, its number, "complete", "COMPLETE" or "TASK_STATE_COMPLETE"."""
    if isinstance(value, cls):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return cls(value)
    text = str(value).strip().upper().replace("-", "_")
    prefix = enum_prefix(cls)
    if prefix and text.startswith(prefix):
        text = text[len(prefix):]
    if text in cls.__members__ and text != "UNSPECIFIED":
        return cls[text]
    choices = ", ".join(label(m) for m in cls if m.name != "UNSPECIFIED")
    raise ValidationError(f"unknown {cls.__name__} {value!r} (choose from {choices})")


def label(value: IntEnum | None) -> str:
    """A lower-case display name for an enum value ("complete"); "" for None/UNSPECIFIED."""
    if value is None or value.value == 0:
        return ""
    return value.name.lower() if value.name else f"unknown({int(value)})"


def to_jsonable(message: Any) -> dict[str, Any]:
    """A message as a JSON-ready dict: proto3 JSON mapping, .proto field names, defaults kept."""
    result: dict[str, Any] = message.to_dict(
        casing=betterproto2.Casing.SNAKE, include_default_values=True
    )
    return result
