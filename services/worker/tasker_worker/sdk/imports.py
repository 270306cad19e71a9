"""Handlers named by a dotted import path (`package.module.Name`): importing their module."""

from __future__ import annotations

import importlib
from types import ModuleType

from tasker_worker.sdk.errors import HandlerNotFound

__all__ = ["import_target"]


def import_target(callable_name: str) -> object:
    """The object named by a dotted path, importing the longest module prefix that exists."""
    parts = callable_name.split(".")
    if len(parts) < 2 or not all(part.isidentifier() for part in parts):
        raise HandlerNotFound(callable_name, "not registered and not a dotted import path")
    for split in range(len(parts), 0, -1):
        module_name = ".".join(parts[:split])
        module = import_module(callable_name, module_name)
        if module is None:
            continue
        target: object = module
        for attr in parts[split:]:
            target = getattr(target, attr, None)
            if target is None:
                raise HandlerNotFound(callable_name, f"{module_name} has no {attr!r}")
        return target
    raise HandlerNotFound(callable_name, f"not registered, and no module {parts[0]!r} to import")


def import_module(callable_name: str, module_name: str) -> ModuleType | None:
    """`module_name` imported, None if it does not exist; HandlerNotFound if it is broken."""
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (
            module_name == exc.name or module_name.startswith(exc.name + ".")
        ):
            return None
        raise HandlerNotFound(callable_name, f"importing {module_name} failed: {exc}") from exc
    except Exception as exc:
        raise HandlerNotFound(callable_name, f"importing {module_name} failed: {exc!r}") from exc
