"""Compiles the decoder and encoder of a queue payload into straight-line Python functions.

Given the fields of a message (`Spec`s, built by `codec` from the proto and the value
object), this writes the code one would write by hand: one `d.get` and one check per field,
the value object built in one call, and an encoder that writes the fields in declaration
order. Compiling (like `dataclasses` does for ``__init__``) keeps the codec from the contract
as fast as hand-written code; `Compiled.source` shows the code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tasker_shared.contracts import fields as f

# How a present value is read, by `Spec.read`; `{v}` is the JSON value, `{k}` the key and
# `{w}` the enclosing path (both as constants), `{x}` a helper in the namespace.
_READS = {
    "bool": "if not isinstance({v}, bool):\n    fail({w}, {k}, f'expected a boolean, got {{kind({v})}}')\n",
    "object": "if not isinstance({v}, dict):\n    fail({w}, {k}, f'expected an object, got {{kind({v})}}')\n",
    "uuid": "{v} = as_uuid({v}, {k}, {w})\n",
    "timestamp": "{v} = as_timestamp({v}, {k}, {w})\n",
    "strings": "{v} = as_strings({v}, {k}, {w})\n",
    "string_map": "{v} = as_string_map({v}, {k}, {w})\n",
    "int": "{v} = as_int({v}, {k}, {w}, {x})\n",
    "enum": "{v} = as_enum({v}, {k}, {w}, {x})\n",
}
_HELPERS: dict[str, Any] = {
    "fail": f.fail, "kind": f.kind, "as_uuid": f.as_uuid, "as_timestamp": f.as_timestamp,
    "as_strings": f.as_strings, "as_string_map": f.as_string_map, "as_int": f.as_int,
    "as_enum": f.as_enum, "format_timestamp": f.format_timestamp, "load_object": f.load_object,
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Spec:
    """How one field is decoded and encoded."""

    name: str
    read: str  # a key of _READS, or "message" (`nested` reads the object)
    required: bool = False
    default: Any = None  # the value when absent (`factory` or `computed` if set)
    factory: Callable[[], Any] | None = None
    computed: Callable[[dict[str, Any]], Any] | None = None  # gets the fields before it
    nonempty: bool = False
    check: Callable[[str, str, str], None] | None = None
    argument: Any = None  # the `{x}` of _READS: an enum table, or an int range (low, high)
    nested: str | None = None  # name of the nested message's reader / writer
    encode: str = "{x}"  # value object -> JSON: an expression of `{x}` (helpers may be used)
    maybe_none: bool = False  # the value object may hold None (then it is left out)
    omit_false: bool = False  # left out unless true


class Compiled:
    """Source and namespace of compiled readers and writers; `build` execs them."""

    def __init__(self) -> None:
        self.namespace: dict[str, Any] = dict(_HELPERS)
        self.source: list[str] = []

    def constant(self, value: Any) -> str:
        """`value` in the compiled code: a literal, or a name in its namespace."""
        if value is None or type(value) in (bool, int, str):
            return repr(value)
        label = getattr(value, "__name__", "c").strip("_<>")
        name = f"_{label}_{len(self.namespace)}"
        self.namespace[name] = value
        return name

    def reader(self, name: str, cls: type, where: str, specs: list[Spec],
               check: Callable[[Any, str], None] | None, *, payload: bool = False) -> None:
        """def `name`(d): the value object `cls` from JSON object `d` (paths under `where`);
        a `payload` reader takes any value, and JSON text, through `fields.load_object`."""
        w = repr(where)
        lines = [f"def {name}(d):\n"]
        if payload:
            lines.append(f"    d = load_object(d, {w})\n")
        for number, spec in enumerate(specs):
            v, k = f"v{number}", repr(spec.name)
            body = [f"{v} = d.get({k})\n", f"if {v} is None:\n"]
            body += _indent(self._absent(spec, v, k, w, specs[:number]))
            body.append("else:\n")
            body += _indent(self._present(spec, v, k, w))
            lines += _indent(body)
        arguments = ", ".join(f"{spec.name}=v{number}" for number, spec in enumerate(specs))
        lines.append(f"    value = {self.constant(cls)}({arguments})\n")
        if check is not None:
            lines.append(f"    {self.constant(check)}(value, {w})\n")
        lines.append("    return value\n")
        self.source.append("".join(lines))

    def _absent(self, spec: Spec, v: str, k: str, w: str, before: list[Spec]) -> list[str]:
        if spec.computed is not None:
            got = ", ".join(f"{s.name!r}: v{n}" for n, s in enumerate(before))
            return [f"{v} = {self.constant(spec.computed)}({{{got}}})\n"]
        if spec.required:
            return [f"fail({w}, {k}, 'is required')\n"]
        if spec.factory is not None:
            return [f"{v} = {self.constant(spec.factory)}()\n"]
        return [f"{v} = {self.constant(spec.default)}\n"]

    def _present(self, spec: Spec, v: str, k: str, w: str) -> list[str]:
        if spec.read == "str":
            template = ("if not isinstance({v}, str):\n"
                        "    fail({w}, {k}, f'expected a string, got {{kind({v})}}')\n")
            if spec.nonempty:
                template += "if not {v}:\n    fail({w}, {k}, 'must not be empty')\n"
            if spec.check is not None:
                template += f"{self.constant(spec.check)}({{v}}, {{k}}, {{w}})\n"
        elif spec.read == "message":
            template = _READS["object"] + f"{{v}} = {spec.nested}({{v}})\n"
        else:
            template = _READS[spec.read]
        if spec.read == "int":
            x = ", ".join(map(str, spec.argument))
        else:
            x = "" if spec.argument is None else self.constant(spec.argument)
        return template.format(v=v, k=k, w=w, x=x).splitlines(keepends=True)

    def writer(self, name: str, specs: list[Spec]) -> None:
        """def `name`(value): the JSON object of a value object, fields in declaration order."""
        always = [spec for spec in specs if not (spec.omit_false or spec.maybe_none)]
        leading = always[: next((n for n, s in enumerate(specs) if s not in always), len(specs))]
        items = ", ".join(f"{s.name!r}: {s.encode.format(x=f'value.{s.name}')}" for s in leading)
        lines = [f"def {name}(value):\n", f"    out = {{{items}}}\n"]
        for spec in specs[len(leading):]:
            if spec in always:
                lines.append(f"    out[{spec.name!r}] = {spec.encode.format(x=f'value.{spec.name}')}\n")
                continue
            test = "if x:" if spec.omit_false else "if x is not None:"
            lines += [f"    x = value.{spec.name}\n", f"    {test}\n",
                      f"        out[{spec.name!r}] = {spec.encode.format(x='x')}\n"]
        lines.append("    return out\n")
        self.source.append("".join(lines))

    def build(self) -> dict[str, Any]:
        """Exec the source; returns the namespace holding the functions."""
        exec("\n".join(self.source), self.namespace)  # our own code, from the contract
        return self.namespace


def _indent(lines: list[str]) -> list[str]:
    return [f"    {line}" for line in lines]
