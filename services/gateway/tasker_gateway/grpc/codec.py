"""The gRPC server's codec: requests decoded bounded in depth, time and stack (every
refusal a GRPCError INVALID_ARGUMENT that says what is wrong), responses encoded fast.

protobuf's C parser (upb, through the descriptor set kept for reflection) reads the bytes:
it checks the wire format and UTF-8, and refuses nesting past protobuf's limit of 100
messages (a JSON object inside a `google.protobuf.Struct` takes three: Struct, map entry,
Value, so a Struct holds about 32 levels) without recursing in Python. Enum fields must hold
a value the enum defines. The betterproto2 message the servicers take is then built from the
parsed message, which is ten times faster than betterproto2's own pure-Python parser.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import betterproto2
from google.protobuf import json_format, message_factory  # type: ignore[import-untyped]
from google.protobuf.message import DecodeError, Message  # type: ignore[import-untyped]
from grpclib.const import Status
from grpclib.encoding.proto import ProtoCodec
from grpclib.exceptions import GRPCError

from tasker_client.typehints import cache_type_hints
from tasker_gateway.grpc.reflection import descriptor_pool

# Well-known types whose fields hold no enums a client chooses (NullValue has one value).
_OPAQUE = frozenset({"google.protobuf.Struct", "google.protobuf.Value",
                     "google.protobuf.ListValue", "google.protobuf.Timestamp",
                     "google.protobuf.Duration"})
_REASONS = {"MaxDepth": "it nests deeper than protobuf allows (100 messages; a Struct holds"
                        " about 32 levels of JSON objects)",
            "UTF-8": "a string field is not valid UTF-8",
            "corrupt": "its bytes are not valid protobuf"}


cache_type_hints()  # every to_dict / from_dict below resolves annotations once per class


def invalid(message: str) -> GRPCError:
    return GRPCError(Status.INVALID_ARGUMENT, message)


@cache
def parser_for(cls: type) -> Any:
    """The protobuf (upb) class of betterproto2 message class `cls` (tasker.v1 only)."""
    return message_factory.GetMessageClass(
        descriptor_pool().FindMessageTypeByName(f"tasker.v1.{cls.__name__}"))


def _parse(parser: Any, data: bytes) -> Any:
    try:
        return parser.FromString(data)
    except DecodeError as exc:
        text = str(exc)
        reason = next((why for key, why in _REASONS.items() if key in text),
                      "it cannot be decoded")
        raise invalid(f"the request is not a valid {parser.DESCRIPTOR.full_name}: {reason}"
                      ) from None


def check_enums(message: Any) -> None:
    """INVALID_ARGUMENT naming the field if an enum field of `message` (or of a message it
    holds) has a number its enum does not define (proto3 parsers keep unknown numbers)."""
    stack: list[tuple[Any, str]] = [(message, "")]
    while stack:
        item, prefix = stack.pop()
        for field, value in item.ListFields():
            path = f"{prefix}{field.name}"
            target = field.message_type
            if target is not None and target.GetOptions().map_entry:
                field, target = target.fields_by_name["value"], None
                value = list(value.values())
                if field.message_type is not None:
                    target = field.message_type
            values = [value] if isinstance(value, int | Message) else value
            if field.enum_type is not None:
                for number in values:
                    if number not in field.enum_type.values_by_number:
                        raise invalid(f"{path}: {number} is not a {field.enum_type.name} value")
            elif target is not None and target.full_name not in _OPAQUE:
                stack.extend((sub, f"{path}.") for sub in values)


def decode(data: bytes, message_type: Any) -> Any:
    """`data` as a `message_type` (a betterproto2 tasker.v1 message, or a protobuf message
    of grpclib's own services: health, reflection); GRPCError INVALID_ARGUMENT otherwise."""
    if not issubclass(message_type, betterproto2.Message):
        return _parse(message_type, data)
    parsed = _parse(parser_for(message_type), data)
    check_enums(parsed)
    try:
        plain = json_format.MessageToDict(parsed, preserving_proto_field_name=True)
    except (json_format.Error, ValueError) as exc:  # NaN in a Struct, dates past year 9999
        raise invalid(f"the request cannot be read as JSON: {exc}") from None
    return message_type.from_dict(plain)


def encode(message: Any) -> bytes:
    """The wire bytes of a response: betterproto2 messages are written by protobuf's C
    serializer through their proto3 JSON form (eight times faster than betterproto2's own
    serializer for a Task holding a large context, which would hold the event loop)."""
    if not isinstance(message, betterproto2.Message):
        data: bytes = message.SerializeToString()
        return data
    plain = message.to_dict(casing=_proto_field_name)  # type: ignore[arg-type]
    parsed = json_format.ParseDict(plain, parser_for(type(message))())
    out: bytes = parsed.SerializeToString()
    return out


def _proto_field_name(name: str) -> str:
    """The keys `encode` hands protobuf: the fields' own (proto) names, which ParseDict reads as
    well as JSON names. betterproto2 calls its `casing` argument only to name the keys, and
    its camelCase conversion (regular expressions, for every field of every message) cost as
    much as the rest of the conversion."""
    return name


class TaskerCodec(ProtoCodec):
    """grpclib's protobuf codec with `encode` and `decode` above."""

    def encode(self, message: Any, message_type: Any) -> bytes:
        if not isinstance(message, message_type):
            raise TypeError(f"message must be a {message_type!r}, not a {type(message)!r}")
        return encode(message)

    def decode(self, data: bytes, message_type: Any) -> Any:
        return decode(data, message_type)
