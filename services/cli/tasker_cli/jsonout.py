"""`--json` values: gRPC messages as the REST API spells them (lowercase enum values, ints)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from enum import IntEnum
from typing import Any

import betterproto2

from tasker_client import from_struct, label
from tasker_client.proto.google.protobuf import Struct

_SNAKE = betterproto2.Casing.SNAKE


def enum_text(value: IntEnum | None) -> str | None:
    """An enum value as REST writes it ("complete"); None when unset or UNSPECIFIED."""
    return label(value) or None


def message_json(message: betterproto2.Message) -> dict[str, Any]:
    """A message as a JSON-ready dict with .proto field names and every field present.

    Enum values are lowercase without their proto prefix (`complete`, not
    `TASK_STATE_COMPLETE`), as in REST bodies and the CLI's own options; JSON values
    (contexts, results) come from their exact `*_json` text when the gateway sent it (the
    text field itself is not repeated), else from the Struct with integral numbers as
    integers."""
    data: dict[str, Any] = message.to_dict(casing=_SNAKE, include_default_values=True)
    return _relabel(message, data)


def _relabel(message: Any, data: dict[str, Any]) -> dict[str, Any]:
    for field in dataclasses.fields(message):  # generated messages are dataclasses
        meta = field.metadata.get("betterproto")
        if meta is None or field.name not in data:
            continue
        value = getattr(message, field.name)
        if meta.proto_type == "enum":
            data[field.name] = ([enum_text(v) for v in value] if meta.repeated
                                else enum_text(value))
        elif meta.proto_type == "message":
            data[field.name] = _message_value(value, data[field.name])
    for name in [n for n in data if n.endswith("_json") and n[:-5] in data]:
        text = data.pop(name)
        if isinstance(text, str) and text:
            data[name[:-5]] = json.loads(text)
    return data


def _message_value(value: Any, converted: Any) -> Any:
    if isinstance(value, Struct):
        return from_struct(value)
    if isinstance(value, betterproto2.Message) and isinstance(converted, dict):
        return _relabel(value, converted)
    if isinstance(value, list) and isinstance(converted, list):
        return [_message_value(v, c) for v, c in zip(value, converted, strict=False)]
    if isinstance(value, dict) and isinstance(converted, dict):
        return {k: _message_value(value[k], c) if k in value else c for k, c in converted.items()}
    return converted


def jsonable(value: Any) -> Any:
    """Messages, enums, containers and datetimes as JSON-ready values (see message_json)."""
    if isinstance(value, betterproto2.Message):
        return message_json(value)
    if isinstance(value, IntEnum):
        return enum_text(value)
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, Mapping):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, Iterable) and not isinstance(value, str | bytes):
        return [jsonable(item) for item in value]
    return value


def dumps(value: Any) -> str:
    """One line of JSON: every `--json` output is one value per line (NDJSON for streams)."""
    return json.dumps(jsonable(value), separators=(",", ":"), default=str, ensure_ascii=False)
