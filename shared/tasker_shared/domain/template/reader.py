"""Typed field readers that collect template problems and warnings instead of raising."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from enum import StrEnum
from typing import Any, TypeVar

from .preview import label, show

E = TypeVar("E", bound=StrEnum)
# Where a JSON value sits: a field name, or (parent, key or index). Rendered only when a
# problem is reported, so walking a wide or long-keyed value costs O(1) per node.
Path = str | tuple["Path", str | int]

MAX_DEPTH = 64
MAX_NODES = 200_000
_MISSING = object()


__all__ = ["Collector", "Scope", "is_int", "label", "render_path", "show"]


def render_path(path: Path) -> str:
    """`path` as text, e.g. `composition.items[3].id` (long keys clipped)."""
    parts: list[str] = []
    while isinstance(path, tuple):
        path, step = path
        parts.append(f"[{step}]" if isinstance(step, int) else f".{label(step)}")
    parts.append(path)
    return "".join(reversed(parts))


def is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class Collector:
    """Accumulates problems (fatal) and warnings (kept on the template) for one source."""

    __slots__ = ("budget", "problems", "source", "warnings")

    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: list[str] = []
        self.warnings: list[str] = []
        self.budget = MAX_NODES

    def _format(self, where: str, text: str) -> str:
        return f"{self.source}: {where}: {text}" if where else f"{self.source}: {text}"

    def problem(self, where: str, text: str) -> None:
        self.problems.append(self._format(where, text))

    def warn(self, where: str, text: str) -> None:
        self.warnings.append(self._format(where, text))


class Scope:
    """Reads the fields of one mapping; messages name `where` (e.g. a step) and the field path."""

    __slots__ = ("col", "prefix", "where")

    def __init__(self, col: Collector, where: str = "", prefix: str = "") -> None:
        self.col = col
        self.where = where
        self.prefix = prefix

    def child(self, prefix: str) -> Scope:
        return Scope(self.col, self.where, f"{self.prefix}{prefix}.")

    def field(self, key: str) -> str:
        return f"{self.prefix}{key}"

    def problem(self, key: str, text: str) -> None:
        self.col.problem(self.where, f"{self.field(key)} {text}")

    def warn(self, text: str) -> None:
        self.col.warn(self.where, text)

    # -- structure ---------------------------------------------------------------------

    def check_keys(
        self, data: Mapping[Any, Any], known: Iterable[str], legacy: Mapping[str, str] | None = None
    ) -> None:
        """Warn about keys that are ignored: legacy ones with a hint, unknown ones plainly."""
        known_set = known if isinstance(known, frozenset) else frozenset(known)
        for key in data:
            if isinstance(key, str) and key in known_set:
                continue
            if isinstance(key, str) and legacy and key in legacy:
                self.warn(f"legacy key '{self.field(key)}' ignored ({legacy[key]})")
            else:
                self.warn(
                    f"unknown key {show(self.field(key) if isinstance(key, str) else key)} ignored"
                )

    def mapping(self, data: Mapping[Any, Any], key: str) -> Mapping[Any, Any] | None:
        """The nested mapping at `key`; None when absent/null or (with a problem) not a mapping."""
        value = data.get(key)
        if value is None:
            return None
        if not isinstance(value, Mapping):
            self.problem(key, f"must be a mapping, got {show(value)}")
            return None
        return value

    def items(self, data: Mapping[Any, Any], key: str) -> list[Any]:
        """The list at `key` ([] when absent/null); a problem when it is not a list."""
        value = data.get(key)
        if value is None:
            return []
        if not isinstance(value, list | tuple):
            self.problem(key, f"must be a list, got {show(value)}")
            return []
        return list(value)

    # -- scalars -----------------------------------------------------------------------

    def string(
        self,
        data: Mapping[Any, Any],
        key: str,
        *,
        required: bool = False,
        default: str | None = None,
        max_len: int = 255,
    ) -> str | None:
        value = data.get(key)
        if value is None:
            if required:
                self.problem(key, "is required")
            return default
        if not isinstance(value, str):
            self.problem(key, f"must be a string, got {show(value)}")
            return default
        if not 1 <= len(value) <= max_len:
            self.problem(key, f"must be 1 to {max_len} characters long, got {len(value)}")
            return default
        return value

    def text(self, data: Mapping[Any, Any], key: str) -> str | None:
        """A free-text field (description): any string, or absent."""
        value = data.get(key)
        if value is None or isinstance(value, str):
            return value
        self.problem(key, f"must be a string, got {show(value)}")
        return None

    def integer(
        self, data: Mapping[Any, Any], key: str, low: int, high: int, default: int | None
    ) -> int | None:
        value = data.get(key)
        if value is None:
            return default
        if not is_int(value) or not low <= value <= high:
            self.problem(key, f"must be an integer between {low} and {high}, got {show(value)}")
            return default
        return int(value)

    def boolean(self, data: Mapping[Any, Any], key: str, default: bool | None) -> bool | None:
        value = data.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            self.problem(key, f"must be true or false, got {show(value)}")
            return default
        return value

    def choice(self, data: Mapping[Any, Any], key: str, enum: type[E], default: E) -> E:
        value = self.optional_choice(data, key, enum)
        return default if value is None else value

    def optional_choice(self, data: Mapping[Any, Any], key: str, enum: type[E]) -> E | None:
        value = data.get(key)
        if value is None:
            return None
        if isinstance(value, str):
            try:
                return enum(value)
            except ValueError:
                pass
        allowed = ", ".join(member.value for member in enum)
        self.problem(key, f"must be one of {allowed}, got {show(value)}")
        return None

    def string_list(self, data: Mapping[Any, Any], key: str) -> tuple[str, ...]:
        value = data.get(key)
        if value is None:
            return ()
        if not isinstance(value, list | tuple):
            self.problem(key, f"must be a list of strings, got {show(value)}")
            return ()
        out: list[str] = []
        for index, item in enumerate(value):
            if isinstance(item, str) and item:
                out.append(item)
            else:
                self.problem(f"{key}[{index}]", f"must be a non-empty string, got {show(item)}")
        return tuple(out)

    def timestamp(self, data: Mapping[Any, Any], key: str) -> str | None:
        """An ISO 8601 date-time; YAML may already have turned it into a datetime."""
        value = data.get(key)
        if value is None:
            return None
        if isinstance(value, datetime | date):
            return value.isoformat()
        if isinstance(value, str):
            try:
                datetime.fromisoformat(value)
            except ValueError:
                pass
            else:
                return value
        self.problem(key, f"must be an ISO 8601 date-time, got {show(value)}")
        return None

    # -- opaque JSON -------------------------------------------------------------------

    def json(self, data: Mapping[Any, Any], key: str) -> Any:
        """Any JSON value at `key` (None when absent), normalised to plain JSON types."""
        value = data.get(key, _MISSING)
        if value is _MISSING or value is None:
            return None
        ok, out = self._json(value, self.field(key), 0)
        return out if ok else None

    def json_object(self, data: Mapping[Any, Any], key: str) -> dict[str, Any] | None:
        """A JSON object at `key` (None when absent)."""
        value = data.get(key)
        if value is None:
            return None
        if not isinstance(value, Mapping):
            self.problem(key, f"must be a mapping, got {show(value)}")
            return None
        ok, out = self._json(value, self.field(key), 0)
        return out if ok else None

    def schema(self, data: Mapping[Any, Any], key: str) -> Any:
        """A JSON Schema document (mapping or boolean) at `key`, or None."""
        value = data.get(key)
        if value is None:
            return None
        if not isinstance(value, Mapping | bool):
            self.problem(key, f"must be a JSON Schema (a mapping), got {show(value)}")
            return None
        return self.json(data, key)

    def _json(self, value: Any, path: Path, depth: int) -> tuple[bool, Any]:
        self.col.budget -= 1
        if self.col.budget < 0:
            if self.col.budget == -1:
                self._bad(path, f"is too large (over {MAX_NODES} values)")
            return False, None
        if depth > MAX_DEPTH:
            self._bad(path, f"is nested more than {MAX_DEPTH} levels deep")
            return False, None
        if value is None or isinstance(value, bool | str) or is_int(value):
            return True, value
        if isinstance(value, float):
            if math.isfinite(value):
                return True, value
            self._bad(path, f"must be a finite number, got {show(value)}")
            return False, None
        if isinstance(value, datetime | date):
            return True, value.isoformat()
        if isinstance(value, Mapping):
            return self._json_mapping(value, path, depth)
        if isinstance(value, list | tuple):
            items: list[Any] = []
            good = True
            for index, item in enumerate(value):
                ok, out = self._json(item, (path, index), depth + 1)
                good = good and ok
                items.append(out)
            return good, items
        self._bad(path, f"must be plain JSON data, got a {type(value).__name__}")
        return False, None

    def _bad(self, path: Path, text: str) -> None:
        self.col.problem(self.where, f"{render_path(path)} {text}")

    def _json_mapping(self, value: Mapping[Any, Any], path: Path, depth: int) -> tuple[bool, Any]:
        obj: dict[str, Any] = {}
        good = True
        for name, item in value.items():
            if not isinstance(name, str):
                self._bad(path, f"has a non-string key {show(name)}")
                good = False
                continue
            ok, out = self._json(item, (path, name), depth + 1)
            good = good and ok
            obj[name] = out
        return good, obj
