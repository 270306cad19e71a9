"""Bounded renderings of user-supplied values for error messages (never repr the whole value)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import date, datetime, time
from typing import Any

SHOW_LIMIT = 60
LABEL_LIMIT = 64
# Integers longer than this are described, not printed (repr of a huge int is slow and
# raises ValueError past sys.get_int_max_str_digits()).
_INT_BITS = 200


class _Lit(str):
    """Punctuation emitted as is (not quoted like a string value)."""

    __slots__ = ()


def show(value: object, limit: int = SHOW_LIMIT) -> str:
    """A short, repr-like rendering of `value`, at most `limit` characters.

    Work and memory are bounded by `limit` whatever the value: containers are walked lazily
    and only as far as the preview reaches, so values that share or nest references (YAML
    aliases, recursive lists) cost no more than small ones.
    """
    text = _render(value, limit + 1)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def label(name: str, limit: int = LABEL_LIMIT) -> str:
    """A user-given name (key, step, environment) clipped for use inside a message."""
    return name if len(name) <= limit else name[: limit - 3] + "..."


def _render(value: object, budget: int) -> str:
    parts: list[str] = []
    size = 0
    stack: list[Iterator[Any]] = [iter((value,))]
    while stack and size < budget:
        try:
            item = next(stack[-1])
        except StopIteration:
            stack.pop()
            continue
        if isinstance(item, _Lit):
            piece: str = item
        elif isinstance(item, Mapping):
            stack.append(_mapping(item))
            continue
        elif isinstance(item, list | tuple | set | frozenset):
            stack.append(_sequence(item))
            continue
        else:
            piece = _scalar(item, budget)
        parts.append(piece)
        size += len(piece)
    return "".join(parts)


def _scalar(item: object, budget: int) -> str:
    if isinstance(item, str | bytes):
        return repr(item[:budget])
    if item is None or isinstance(item, bool | float | datetime | date | time):
        return repr(item)
    if isinstance(item, int):
        bits = item.bit_length()
        return repr(item) if bits <= _INT_BITS else f"<an integer of {bits} bits>"
    return f"<a {type(item).__name__}>"


def _sequence(items: list[Any] | tuple[Any, ...] | set[Any] | frozenset[Any]) -> Iterator[Any]:
    brackets = "()" if isinstance(items, tuple) else "[]" if isinstance(items, list) else "{}"
    yield _Lit(brackets[0])
    for index, item in enumerate(items):
        if index:
            yield _Lit(", ")
        yield item
    yield _Lit(brackets[1])


def _mapping(items: Mapping[Any, Any]) -> Iterator[Any]:
    yield _Lit("{")
    for index, (key, item) in enumerate(items.items()):
        if index:
            yield _Lit(", ")
        yield key
        yield _Lit(": ")
        yield item
    yield _Lit("}")
