"""The handler check (`tasker worker --check`, and at worker start): handlers the templates
name that do not resolve, typed handlers declaring dependencies their step lacks, and
registered handlers no template uses, found before any step runs."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field

import structlog

from tasker_shared.domain.template import TaskTemplate
from tasker_shared.errors import ConfigError
from tasker_shared.runtime.settings import Settings
from tasker_worker.sdk.errors import HandlerNotFound
from tasker_worker.sdk.handlers import HandlerRegistry, default_registry

log = structlog.get_logger("tasker.worker")


@dataclass(frozen=True, slots=True)
class StepProblem:
    """A template step whose handler cannot serve it."""

    template: str
    step: str
    callable: str
    reason: str

    def line(self) -> str:
        return f"{self.template} step {self.step!r}: handler {self.callable!r}: {self.reason}"


@dataclass(frozen=True, slots=True)
class HandlerCheck:
    """What the check found; `ok` when every step's handler can serve it (handlers no
    template uses are reported, but harmless)."""

    templates: int
    steps: int
    missing: list[StepProblem] = field(default_factory=list)
    mismatched: list[StepProblem] = field(default_factory=list)
    unused: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.missing and not self.mismatched

    def lines(self) -> list[str]:
        """The report, one finding a line, a summary last."""
        found = [f"not registered: {p.line()}" for p in self.missing]
        found += [f"dependency mismatch: {p.line()}" for p in self.mismatched]
        found += [f"unused: handler {name!r} is registered but no template names it"
                  for name in self.unused]
        found.append(f"{self.templates} templates, {self.steps} steps checked: "
                     f"{len(self.missing)} handlers not registered, {len(self.mismatched)} "
                     f"dependency mismatches, {len(self.unused)} handlers unused")
        return found


def check_handlers(registry: HandlerRegistry, templates: Iterable[TaskTemplate]) -> HandlerCheck:
    """Resolve the handler of every step of `templates` through `registry` (its names, then
    dotted import paths, as the worker does when a step runs)."""
    missing: list[StepProblem] = []
    mismatched: list[StepProblem] = []
    used: set[str] = set()
    count_templates = count_steps = 0
    for template in templates:
        count_templates += 1
        for step in template.steps:
            count_steps += 1
            handler = step.handler
            used.add(handler.callable)
            try:
                resolved = registry.resolve(handler.callable, handler.method,
                                            resolver=handler.resolver)
            except HandlerNotFound as exc:
                missing.append(StepProblem(template.key, step.name, handler.callable,
                                           exc.reason + _did_you_mean(registry, handler.callable)))
                continue
            # Steps created at run time (batch workers, convergence) get their parents'
            # names at run time; the others depend on exactly the steps the template lists.
            lacking = [d for d in resolved.dependencies if d not in step.dependencies]
            if lacking and step.created_at_initialization:
                listed = ", ".join(step.dependencies) or "none"
                mismatched.append(StepProblem(
                    template.key, step.name, handler.callable,
                    f"declares dependencies {', '.join(lacking)} the step does not have "
                    f"(its dependencies: {listed})"))
    unused = [name for name in registry.names() if name not in used]
    return HandlerCheck(templates=count_templates, steps=count_steps, missing=missing,
                        mismatched=mismatched, unused=unused)


def _did_you_mean(registry: HandlerRegistry, name: str) -> str:
    if name in registry:
        return ""
    close = difflib.get_close_matches(name, registry.names(), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def check_configured(settings: Settings, registry: HandlerRegistry | None = None) -> HandlerCheck:
    """The check for a worker configured by `settings` (`tasker worker --check`): imports its
    handler modules and loads its templates, as the worker does at start; no database."""
    from tasker_shared.templates_io import load_templates
    from tasker_worker.service import import_handler_modules

    ws = settings.worker
    import_handler_modules(ws.handler_modules)
    templates = load_templates(ws.template_paths) if ws.template_paths else []
    return check_handlers(registry or default_registry,
                          [t.resolve_for_environment(settings.environment) for t in templates])


def check_at_start(registry: HandlerRegistry, templates: Iterable[TaskTemplate], *,
                   environment: str, mode: str) -> HandlerCheck | None:
    """The start-up check (`worker.handler_check`): findings logged as warnings; with
    "fail", a template step whose handler cannot serve it stops the worker (ConfigError)."""
    if mode == "off":
        return None
    found = check_handlers(registry, [t.resolve_for_environment(environment) for t in templates])
    for line in found.lines()[:-1]:
        log.warning("handler_check", finding=line)
    if not found.ok and mode == "fail":
        problems = [p.line() for p in found.missing + found.mismatched]
        raise ConfigError(f"handler check failed (worker.handler_check = fail): "
                          f"{'; '.join(problems)}")
    return found
