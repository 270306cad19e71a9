"""What makes a queue message poison before any handler sees it: a body or headers the
database connection could not decode (`limits.Undecodable`), or headers that are not a JSON
object nested at most `HEADERS_MAX_DEPTH` levels. The body's own bounds are its contract's
(`contracts.fields.load_object`). Every consumer (orchestration queues and worker queues)
asks here, so a poison message is set aside with the same reasons wherever it lands."""

from __future__ import annotations

from typing import Any

from tasker_shared.contracts.fields import kind
from tasker_shared.domain.limits import DEFAULT_MAX_DEPTH, Undecodable, json_depth

# Headers carry flat string maps (trace context); anything deeper is not ours.
HEADERS_MAX_DEPTH = DEFAULT_MAX_DEPTH

# The `reason` label of MESSAGES_SET_ASIDE for a message that could not be decoded.
UNDECODABLE = "undecodable"


def headers_problem(headers: Any) -> str | None:
    """Why a message's PGMQ headers cannot be used, or None when they can (or are absent)."""
    if headers is None:
        return None
    if isinstance(headers, Undecodable):
        return f"undecodable headers: {headers.reason}"
    if not isinstance(headers, dict):
        return f"undecodable headers: expected an object, got {kind(headers)}"
    if json_depth(headers, stop_after=HEADERS_MAX_DEPTH) > HEADERS_MAX_DEPTH:
        return f"undecodable headers: nested deeper than {HEADERS_MAX_DEPTH} levels"
    return None


def message_problem(body: Any, headers: Any) -> str | None:
    """Why a message must be set aside before it is decoded, or None."""
    if isinstance(body, Undecodable):
        return f"undecodable body: {body.reason}"
    return headers_problem(headers)
