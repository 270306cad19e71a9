"""Bounds on template YAML text, checked on the parser's event stream before anything is built.

Aliases let a few hundred bytes of YAML describe a value of billions of nodes ("billion
laughs"): building it is cheap (the copies share objects) but anything that walks it —
validation, error messages, JSON encoding for storage — is not. The event stream is read
once, without building values, and the document is refused when its text, its nesting or
its size *with every alias expanded* exceeds a bound, or when an alias refers to a
collection that contains it.
"""

from __future__ import annotations

from typing import Any

import yaml

from .preview import label

MAX_TEMPLATE_CHARS = 1_048_576
# Template structure (about 6 levels) plus JSON values nested up to reader.MAX_DEPTH (64).
MAX_YAML_DEPTH = 128
# Nodes (scalars and collections, mapping keys included) with aliases expanded.
MAX_EXPANDED_NODES = 200_000
# Characters of scalar text with aliases expanded (what JSON encoding would write out).
MAX_EXPANDED_CHARS = 4 * MAX_TEMPLATE_CHARS


class YamlBoundsError(ValueError):
    """The YAML text breaks one of the bounds; the message says which and where."""


def check_yaml_bounds(text: str, loader_class: Any) -> None:
    """Raise YamlBoundsError when `text` is too long, too deep, expands too far through
    aliases, or holds a recursive alias. Syntax errors surface as yaml.YAMLError."""
    if len(text) > MAX_TEMPLATE_CHARS:
        raise YamlBoundsError(
            f"the template is {len(text)} characters long; at most {MAX_TEMPLATE_CHARS} "
            "are allowed"
        )
    parser = loader_class(text)
    try:
        _Meter().read(parser)
    finally:
        parser.dispose()


class _Meter:
    """Counts the expanded size of each anchored node as its events stream past."""

    __slots__ = ("anchors", "chars", "nodes", "open")

    def __init__(self) -> None:
        self.anchors: dict[str, tuple[int, int]] = {}  # anchor -> (nodes, chars) expanded
        self.open: list[list[Any]] = []  # per open collection: [nodes, chars, anchor]
        self.nodes = 0
        self.chars = 0

    def read(self, parser: Any) -> None:
        while parser.check_event():
            event = parser.get_event()
            if isinstance(event, yaml.ScalarEvent):
                self._add(1, len(event.value), event)
                self._close(event.anchor, 1, len(event.value))
            elif isinstance(event, yaml.AliasEvent):
                self._alias(event)
            elif isinstance(event, yaml.SequenceStartEvent | yaml.MappingStartEvent):
                self._add(1, 0, event, in_parent=False)
                self.open.append([1, 0, event.anchor])
                if len(self.open) > MAX_YAML_DEPTH:
                    raise _at(event, f"nested more than {MAX_YAML_DEPTH} levels deep")
            elif isinstance(event, yaml.SequenceEndEvent | yaml.MappingEndEvent):
                nodes, chars, anchor = self.open.pop()
                if self.open:
                    self.open[-1][0] += nodes
                    self.open[-1][1] += chars
                self._close(anchor, nodes, chars)

    def _alias(self, event: Any) -> None:
        anchor = event.anchor
        if any(entry[2] == anchor for entry in self.open):
            raise _at(event, f"alias *{label(anchor)} refers to a collection that contains it")
        # An undefined alias is left for the composer to report.
        nodes, chars = self.anchors.get(anchor, (1, 0))
        self._add(nodes, chars, event)

    def _add(self, nodes: int, chars: int, event: Any, *, in_parent: bool = True) -> None:
        """Count `nodes` values and `chars` characters (expanded) in the document and, for
        a scalar or alias, in the enclosing collection (a collection is added to its parent,
        all of it, when it ends)."""
        self.nodes += nodes
        self.chars += chars
        if in_parent and self.open:
            self.open[-1][0] += nodes
            self.open[-1][1] += chars
        if self.nodes > MAX_EXPANDED_NODES:
            raise _at(
                event,
                f"the document has more than {MAX_EXPANDED_NODES} values with its aliases "
                "expanded",
            )
        if self.chars > MAX_EXPANDED_CHARS:
            raise _at(
                event,
                f"the document has more than {MAX_EXPANDED_CHARS} characters of text with "
                "its aliases expanded",
            )

    def _close(self, anchor: str | None, nodes: int, chars: int) -> None:
        """A node of `nodes` values and `chars` characters (expanded) is complete."""
        if anchor is not None:
            self.anchors[anchor] = (nodes, chars)


def _at(event: Any, text: str) -> YamlBoundsError:
    mark = event.start_mark
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
    return YamlBoundsError(f"{where}{text}")
