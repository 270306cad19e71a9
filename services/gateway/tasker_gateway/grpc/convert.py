"""Conversions between the API models and the tasker.v1 protobuf messages.

`to_pb` fills a message from the model fields of the same name, guided by the message's
field metadata: enums by their lower-case value, UUIDs as strings, JSON objects as
`google.protobuf.Struct`, nested models recursively; a string field `X_json` beside a JSON
object `X` gets that object as JSON text (exact integers; Struct numbers are doubles).
Struct values come back with integral numbers as ints.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from functools import cache
from typing import Any, TypeVar, cast
from uuid import UUID

import betterproto2
from pydantic import BaseModel

from tasker_shared.contracts.generated.google.protobuf import Struct
from tasker_shared.contracts.generated.tasker import v1 as pb

P = TypeVar("P", bound=betterproto2.Message)
_INTEGERS = frozenset({"int32", "int64", "uint32", "uint64", "sint32", "sint64", "fixed32",
                       "fixed64", "sfixed32", "sfixed64"})
_MAX_EXACT = 2**53


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class _Field:
    name: str
    proto_type: str
    optional: bool
    repeated: bool
    target: Any  # enum class, message class, or None


def _type_name(annotation: str) -> str:
    name = annotation.replace(" | None", "").strip().strip('"')
    if name.startswith("list[") and name.endswith("]"):
        name = name[5:-1]
    return name.rsplit(".", 1)[-1].strip('"')


@cache
def _fields(cls: type[betterproto2.Message]) -> tuple[_Field, ...]:
    out = []
    for f in dataclasses.fields(cast(Any, cls)):
        meta = betterproto2.FieldMetadata.get(f)
        target = None
        if meta.proto_type in ("enum", "message") and meta.unwrap is None:
            name = _type_name(str(f.type))
            target = Struct if name == "Struct" else getattr(pb, name)
        out.append(_Field(name=f.name, proto_type=meta.proto_type,
                          optional=bool(meta.optional), repeated=bool(meta.repeated),
                          target=target))
    return tuple(out)


def enum_member(cls: Any, value: Any) -> Any:
    """The member of proto enum `cls` named like `value` (a lower-case state string)."""
    if isinstance(value, enum.Enum):
        value = value.value
    try:
        return cls[str(value).upper()]
    except KeyError:
        return cls(0)


def _scalar(field: _Field, value: Any) -> Any:
    if field.proto_type == "enum":
        return enum_member(field.target, value)
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    if field.proto_type in _INTEGERS:
        return round(float(value))
    if isinstance(value, Decimal):
        return float(value)
    return value


def _value(field: _Field, value: Any) -> Any:
    if field.proto_type == "message" and field.target is Struct:
        return Struct.from_dict(_jsonable(value)) if isinstance(value, Mapping) else None
    if field.proto_type == "message" and field.target is not None:
        return to_pb(value, field.target)
    if isinstance(value, datetime):
        return value
    return _scalar(field, value)


def to_pb(source: BaseModel | Mapping[str, Any], cls: type[P], **overrides: Any) -> P:
    """Message `cls` from the same-named fields of `source` (a model or a mapping)."""
    data = source if isinstance(source, Mapping) else {
        name: getattr(source, name) for name in type(source).model_fields}
    kwargs: dict[str, Any] = {}
    for field in _fields(cls):
        if field.name in overrides:
            kwargs[field.name] = overrides[field.name]
            continue
        if field.name not in data:
            base = field.name.removesuffix("_json")
            if base != field.name and isinstance(data.get(base), Mapping):
                kwargs[field.name] = json_text(data[base])
            continue
        value = data[field.name]
        if value is None:
            if field.optional:
                kwargs[field.name] = None
            continue
        if field.repeated:
            kwargs[field.name] = [_value(field, item) for item in value]
        else:
            kwargs[field.name] = _value(field, value)
    return cls(**kwargs)


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, UUID | Decimal):
        return str(value) if isinstance(value, UUID) else float(value)
    return value


def _exact(item: Any) -> Any:
    if isinstance(item, UUID):
        return str(item)
    if isinstance(item, datetime):
        return item.isoformat()
    if isinstance(item, Decimal):
        return int(item) if item == item.to_integral_value() else float(item)
    raise TypeError(f"{type(item).__name__} is not JSON")


def json_text(value: Mapping[str, Any]) -> str:
    """A JSON object as compact JSON text: integers exact, whatever their size."""
    return json.dumps(value, default=_exact, separators=(",", ":"), ensure_ascii=False)


def _unnumber(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer() and math.fabs(value) <= _MAX_EXACT:
        return int(value)
    if isinstance(value, dict):
        return {k: _unnumber(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unnumber(v) for v in value]
    return value


def from_struct(struct: Struct | None) -> dict[str, Any] | None:
    """A Struct as a JSON object (integral numbers as ints); None stays None."""
    if struct is None:
        return None
    data = struct.to_dict()
    return _unnumber(data) if isinstance(data, dict) else {}


def state_name(member: enum.Enum) -> str:
    """The lower-case state string of a proto enum member (TaskState.PENDING -> pending)."""
    return member.name.lower()
