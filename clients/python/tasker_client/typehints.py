"""betterproto2 (0.10) resolves a message class's annotations with `typing.get_type_hints` on
every `to_dict`, `from_dict` and parse of a nested message, for every message and
sub-message: encoding one `CreateTasks` answer of 200 tasks spent two thirds of the gateway's
time there, and reading big answers costs a client the same. A generated class's annotations
never change, so `cache_type_hints` makes betterproto2 resolve them once per class (for every
betterproto2 message class in the process: the client's and the server's generated code
alike). betterproto2 only looks fields up in the mapping it gets, never changes it."""

from __future__ import annotations

from typing import Any

import betterproto2


def cache_type_hints() -> None:
    """Idempotent: the first call installs the cache, later ones do nothing."""
    original: Any = betterproto2.Message.__dict__["_type_hints"].__func__
    if getattr(original, "cached", False):
        return
    resolved: dict[type, dict[str, type]] = {}

    def _type_hints(cls: type) -> dict[str, type]:
        hints = resolved.get(cls)
        if hints is None:
            hints = resolved[cls] = original(cls)
        return hints

    _type_hints.cached = True  # type: ignore[attr-defined]
    betterproto2.Message._type_hints = classmethod(_type_hints)  # type: ignore[assignment,method-assign]
