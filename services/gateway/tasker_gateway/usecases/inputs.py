"""Parsing of transport inputs (path segments, query strings, proto fields) into typed values,
with error messages that name the offending field; the bounds on free-form JSON values that
every use case applies, whichever transport the request came by."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TypeVar
from uuid import UUID

import pydantic

from tasker_shared.domain.limits import check_json
from tasker_shared.errors import ValidationError
from tasker_shared.runtime.settings import GatewaySettings

M = TypeVar("M", bound=pydantic.BaseModel)

REQUEST_ID_RE = re.compile(r"[A-Za-z0-9._:\-]{1,128}")


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def parse_uuid(value: str, field: str) -> UUID:
    """`value` as a UUID; ValidationError naming `field` otherwise."""
    try:
        return UUID(value)
    except (ValueError, TypeError, AttributeError):
        raise ValidationError(f"{field}: {_show(value)} is not a valid UUID",
                              details={"field": field}) from None


def parse_request_id(value: str) -> str:
    if not REQUEST_ID_RE.fullmatch(value):
        raise ValidationError(
            f"request_id: {_show(value)} must be 1 to 128 characters of [A-Za-z0-9._:-]",
            details={"field": "request_id"})
    return value


def describe(exc: pydantic.ValidationError, *, where: str = "") -> ValidationError:
    """A Tasker ValidationError listing pydantic's findings, one per field."""
    problems = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(part) for part in err["loc"]) or where or "body"
        problems.append(f"{loc}: {err['msg']}")
    shown = "; ".join(problems[:5])
    if len(problems) > 5:
        shown += f"; and {len(problems) - 5} more"
    return ValidationError(f"invalid {where or 'request'}: {shown}",
                           details={"problems": problems[:50]})


def validated(build: Callable[[], M], *, where: str) -> M:
    """`build()`, with pydantic's ValidationError turned into a Tasker one."""
    try:
        return build()
    except pydantic.ValidationError as exc:
        raise describe(exc, where=where) from None


def bounded(value: int, field: str, *, low: int, high: int) -> int:
    if not low <= value <= high:
        raise ValidationError(f"{field}: must be between {low} and {high}, got {value}",
                              details={"field": field})
    return value


def reject_nul(value: object, where: str) -> None:
    """ValidationError if any string in `value` contains NUL (PostgreSQL cannot store it)."""
    stack: list[tuple[object, str]] = [(value, where)]
    while stack:
        item, path = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                raise ValidationError(f"{path}: strings must not contain NUL (\\u0000)",
                                      details={"field": path})
        elif isinstance(item, dict):
            for key, sub in item.items():
                if isinstance(key, str) and "\x00" in key:
                    raise ValidationError(f"{path}: keys must not contain NUL (\\u0000)",
                                          details={"field": path})
                stack.append((sub, f"{path}.{key}"))
        elif isinstance(item, list | tuple):
            stack.extend((sub, f"{path}[{i}]") for i, sub in enumerate(item))


def check_json_input(settings: GatewaySettings, value: object, what: str) -> None:
    """`JsonLimitError` naming `what` when a request's free-form JSON value nests deeper
    than `max_json_depth` or encodes to more than `max_json_bytes` (None passes)."""
    if value is not None:
        check_json(value, what=what, max_depth=settings.max_json_depth,
                   max_bytes=settings.max_json_bytes)
