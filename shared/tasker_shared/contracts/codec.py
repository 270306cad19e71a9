"""Queue payload codecs built from the contract: the proto's fields onto the value objects.

For each payload the fields, their order, their proto types and presence come from
`queue_schema` (generated from proto/tasker/v1/messages.proto); the Python types and the
defaults come from the value object (`payloads`); what proto3 cannot say (a string that is a
UUID is said by the value object's type; ranges narrower than the proto type, required fields,
checks) comes from `Rule`s. A value object that does not mirror its proto message, or an enum
that does not mirror its proto enum, fails when the codec is built (at import), naming the
difference. Decoding raises ContractError naming the field (`fields`); encoding writes every
field in declaration order and leaves out those that are None.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import Enum
from typing import Any, Generic, TypeVar
from uuid import UUID

from tasker_shared.contracts.compiler import Compiled, Spec
from tasker_shared.contracts.queue_schema import ENUMS, MESSAGES

T = TypeVar("T")
Json = dict[str, Any]
Got = dict[str, Any]  # the fields of a message decoded so far

_INT_RANGES = {
    "int32": (-(2**31), 2**31 - 1),
    "uint32": (0, 2**32 - 1),
    "int64": (-(2**63), 2**63 - 1),
    "uint64": (0, 2**64 - 1),
}
# The Python types a value object may use for each proto kind.
_PYTHON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str, UUID), "bool": (bool,), "struct": (dict,), "timestamp": (datetime,),
    "map": (dict,), "enum": (Enum,), **{name: (int,) for name in _INT_RANGES},
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Rule:
    """What Tasker asks of one field beyond its proto3 type (SPEC 1.4)."""

    required: bool = False  # absent is an error, although producers get a default
    nonempty: bool = False  # a string that must not be empty (required strings never may be)
    low: int | None = None  # an integer range narrower than the proto type's
    high: int | None = None
    check: Callable[[str, str, str], None] | None = None  # a string's (value, key, where)
    numbers: bool = False  # an enum that also accepts its proto numbers
    omit_false: bool = False  # a bool written only when true
    default: Callable[[Got], Any] | None = None  # absent: computed from the fields before it


@dataclass(frozen=True, slots=True)
class Contract:
    """The rules of the payloads: message -> field -> Rule, and checks of whole messages
    (across fields) called with the decoded value and its path."""

    rules: Mapping[str, Mapping[str, Rule]] = field(default_factory=dict)
    checks: Mapping[str, Callable[[Any, str], None]] = field(default_factory=dict)


class Codec(Generic[T]):
    """The decoder and encoder of the payload value object `cls`, compiled from the contract
    (`source` is their code)."""

    decode: Callable[[Any], T]
    """`obj` (a JSON object, or JSON text) as the value object; ContractError if malformed."""
    encode: Callable[[T], Json]
    """The JSON object of a value, ready for ``json.dumps`` or a jsonb parameter."""

    def __init__(self, cls: type[T], contract: Contract) -> None:
        compiled = Compiled()
        read = _compile_reader(compiled, cls, cls.__name__, contract, payload=True)
        write = _compile_writer(compiled, cls, contract)
        namespace = compiled.build()
        self.decode, self.encode = namespace[read], namespace[write]
        self.source = "\n".join(compiled.source)


# -- the value object against its proto message ---------------------------------------


def _base(hint: Any) -> Any:
    """The class of a field's type hint, without `| None` and type arguments."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        hint = next(arg for arg in typing.get_args(hint) if arg is not type(None))
    return typing.get_origin(hint) or hint


def _spec(cls: type) -> list[tuple[str, str, str, dataclasses.Field[Any], Any]]:
    """(name, kind, proto type, dataclass field, Python class) of each field of `cls`, in
    proto declaration order; TypeError when `cls` does not mirror its proto message."""
    proto = MESSAGES.get(cls.__name__)
    if proto is None:
        raise TypeError(f"{cls.__name__} is not a message of messages.proto")
    ours = {item.name: item for item in dataclasses.fields(cls)}
    names = [name for name, *_ in proto]
    if set(ours) != set(names):
        raise TypeError(f"payloads.{cls.__name__} does not mirror its proto message: "
                        f"missing {sorted(set(names) - set(ours))}, extra "
                        f"{sorted(set(ours) - set(names))}")
    hints = typing.get_type_hints(cls)
    found = []
    for name, kind, type_name, optional, repeated in proto:
        item, python = ours[name], _base(hints[name])
        expected = (tuple,) if repeated else _PYTHON_TYPES.get(kind)
        where = f"payloads.{cls.__name__}.{name}"
        if kind in ("message", "enum") and getattr(python, "__name__", None) != type_name:
            raise TypeError(f"{where} must be a {type_name}")
        fits = isinstance(python, type) and expected is not None and issubclass(python, expected)
        if kind != "message" and not fits:
            raise TypeError(f"{where} is a {python}, which cannot hold a proto {kind}")
        if item.default is None and not (optional or repeated):
            raise TypeError(f"{where} defaults to None, but the proto field has no presence")
        if repeated and kind != "string":
            raise TypeError(f"{where}: only repeated strings are supported")
        found.append((name, kind, type_name, item, python))
    return found


def _enum_table(enum: type[Enum], proto_name: str, numbers: bool) -> dict[str | int, Any]:
    """Spelling -> member: the lower-case suffix of the proto value name, the same without
    underscores (the Rust reference writes "ServerRequested"), and with `numbers` the proto
    numbers; TypeError when `enum` does not mirror the proto enum."""
    proto = {name: number for name, number in ENUMS[proto_name] if name != "UNSPECIFIED"}
    if [member.name for member in enum] != list(proto) or any(
            member.value != member.name.lower() for member in enum):
        raise TypeError(f"payloads.{enum.__name__} does not mirror the proto enum "
                        f"{proto_name} (values: {[name.lower() for name in proto]})")
    table: dict[str | int, Any] = {member.value: member for member in enum}
    table.update({member.value.replace("_", ""): member for member in enum})
    if numbers:
        table.update({proto[member.name]: member for member in enum})
    return table


# -- decoding and encoding ---------------------------------------------------------------


def _compile_reader(compiled: Compiled, cls: type, where: str, contract: Contract, *,
                    payload: bool = False) -> str:
    """Compile the reader of `cls` (and of the messages it holds); returns its name."""
    rules = contract.rules.get(cls.__name__, {})
    fields = _spec(cls)
    unknown = set(rules) - {name for name, *_ in fields}
    if unknown:
        raise TypeError(f"rules for {cls.__name__} name no field of it: {sorted(unknown)}")
    specs = []
    for name, kind, type_name, item, python in fields:
        rule = rules.get(name, Rule())
        spec = Spec(name=name, read=_read_kind(kind, python), required=_required(item, rule),
                    computed=rule.default, nonempty=rule.nonempty, check=rule.check)
        if item.default_factory is not dataclasses.MISSING:
            spec = replace(spec, factory=item.default_factory)
        elif item.default is not dataclasses.MISSING:
            spec = replace(spec, default=item.default)
        if spec.read == "str":
            spec = replace(spec, nonempty=rule.nonempty or spec.required)
        elif spec.read == "int":
            low, high = _INT_RANGES[kind]
            spec = replace(spec, argument=(low if rule.low is None else rule.low,
                                           high if rule.high is None else rule.high))
        elif spec.read == "enum":
            spec = replace(spec, argument=_enum_table(python, type_name, rule.numbers))
        elif spec.read == "message":
            nested = _compile_reader(compiled, python, f"{where}.{name}", contract)
            spec = replace(spec, nested=nested)
        specs.append(spec)
    function = f"{'decode' if payload else 'read'}_{len(compiled.source)}_{cls.__name__}"
    compiled.reader(function, cls, where, specs, contract.checks.get(cls.__name__),
                    payload=payload)
    return function


def _read_kind(kind: str, python: Any) -> str:
    if python is tuple:
        return "strings"
    if kind == "string":
        return "str" if python is str else "uuid"
    if kind in _INT_RANGES:
        return "int"
    return {"map": "string_map", "struct": "object"}.get(kind, kind)


def _required(item: dataclasses.Field[Any], rule: Rule) -> bool:
    """Absent is an error: the rule says so, or the value object has no default."""
    no_default = item.default is dataclasses.MISSING and item.default_factory is dataclasses.MISSING
    return rule.default is None and (rule.required or no_default)


def _compile_writer(compiled: Compiled, cls: type, contract: Contract) -> str:
    """Compile the writer of `cls` (and of the messages it holds); returns its name."""
    rules = contract.rules.get(cls.__name__, {})
    hints = typing.get_type_hints(cls)
    specs = []
    for name, kind, _, _, python in _spec(cls):
        spec = Spec(name=name, read=kind, omit_false=rules.get(name, Rule()).omit_false,
                    maybe_none=_may_be_none(hints[name]))
        if python is tuple:
            spec = replace(spec, encode="list({x})")
        elif kind == "message":
            spec = replace(spec, encode=f"{_compile_writer(compiled, python, contract)}({{x}})")
        elif kind == "timestamp":
            spec = replace(spec, encode="format_timestamp({x})")
        elif kind == "enum":
            spec = replace(spec, encode="{x}.value")
        elif python is UUID:
            spec = replace(spec, encode="str({x})")
        specs.append(spec)
    function = f"write_{len(compiled.source)}_{cls.__name__}"
    compiled.writer(function, specs)
    return function


def _may_be_none(hint: Any) -> bool:
    return (isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union) and (
        type(None) in typing.get_args(hint))
