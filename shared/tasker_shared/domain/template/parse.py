"""Parse and validate a task template from an already-loaded mapping (SPEC §4.1)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from ...errors import TemplateError
from .checks import check_graph
from .enums import IdentityStrategy, StalenessAction
from .model import (
    DomainEvent,
    Lifecycle,
    StepOverride,
    StepTemplate,
    SystemDependencies,
    TemplateMetadata,
)
from .parse_step import MAX_TIMEOUT_SECONDS, parse_retry_override, parse_step
from .reader import Collector, Scope, is_int, label, show
from .schemas import check_schema
from .task import TaskTemplate

TOP_KEYS = frozenset(
    (
        "name",
        "namespace_name",
        "version",
        "description",
        "identity_strategy",
        "metadata",
        "system_dependencies",
        "domain_events",
        "input_schema",
        "steps",
        "environments",
        "lifecycle",
    )
)
TOP_LEGACY = {
    "task_handler": "task-level handlers are not used",
    "module_namespace": "not used",
    "task_handler_class": "not used",
    "default_dependent_system": "use system_dependencies.primary",
    "named_steps": "steps are declared under 'steps'",
}
METADATA_KEYS = frozenset(("author", "tags", "documentation_url", "created_at", "updated_at"))
LIFECYCLE_KEYS = frozenset(
    (
        "max_duration_minutes",
        "max_waiting_for_dependencies_minutes",
        "max_waiting_for_retry_minutes",
        "max_steps_in_process_minutes",
        "staleness_action",
        "auto_fail_on_timeout",
        "auto_dlq_on_timeout",
    )
)
OVERRIDE_KEYS = frozenset(("name", "handler", "timeout_seconds", "retry"))
NAMESPACE_MAX = 29
_NAMESPACE_RE = re.compile(r"[A-Za-z0-9_]+")
ALL_STEPS = "ALL"
# The error message lists this many problems; `TemplateError.problems` keeps them all.
MAX_LISTED_PROBLEMS = 100


def parse_template(data: object, *, source: str = "<template>") -> TaskTemplate:
    """Parse a template mapping; raises TemplateError listing every problem found."""
    return _parse(data, source=source, trusted=False)


def template_from_json(data: object, *, source: str = "<json>") -> TaskTemplate:
    """Rebuild a template from `TaskTemplate.to_json` output, i.e. one this system wrote
    itself (skips the JSON Schema meta-check of `input_schema`)."""
    return _parse(data, source=source, trusted=True)


def _parse(data: object, *, source: str, trusted: bool) -> TaskTemplate:
    col = Collector(source)
    template = _build(col, data, trusted=trusted)
    if col.problems or template is None:
        raise template_error(source, col.problems)
    return template


def template_error(source: str, problems: list[str]) -> TemplateError:
    """One TemplateError whose message lists every problem."""
    count = len(problems)
    listed = "\n".join(f"  - {p}" for p in problems[:MAX_LISTED_PROBLEMS])
    if count > MAX_LISTED_PROBLEMS:
        listed += f"\n  (and {count - MAX_LISTED_PROBLEMS} more)"
    return TemplateError(
        f"invalid task template {source} ({count} problem{'s' if count != 1 else ''}):\n"
        + listed,
        problems=problems,
    )


def _build(col: Collector, data: object, *, trusted: bool) -> TaskTemplate | None:
    if not isinstance(data, Mapping):
        what = "empty" if data is None else f"a {type(data).__name__}"
        col.problem("", f"a task template must be a mapping, but the document is {what}")
        return None
    top = Scope(col)
    top.check_keys(data, TOP_KEYS, TOP_LEGACY)
    name = top.string(data, "name", required=True)
    namespace = _namespace(top, data)
    raw_version = data.get("version")
    if is_int(raw_version) or isinstance(raw_version, float):
        top.problem(
            "version",
            f'must be a string, got {show(raw_version)} (quote it in YAML: version: "1.0.0")',
        )
        version = None
    else:
        version = top.string(data, "version", required=True, max_len=50)
    steps = _steps(col, top, data)
    input_schema = top.schema(data, "input_schema")
    if input_schema is not None and not trusted:
        error = check_schema(input_schema)
        if error:
            top.problem("input_schema", f"is not a valid JSON Schema: {error}")
    template = TaskTemplate(
        name=name or "",
        namespace=namespace or "",
        version=version or "",
        steps=steps,
        description=top.text(data, "description"),
        identity_strategy=top.choice(
            data, "identity_strategy", IdentityStrategy, IdentityStrategy.STRICT
        ),
        metadata=_metadata(top, data),
        system_dependencies=_system_dependencies(top, data),
        domain_events=_domain_events(top, data),
        input_schema=input_schema,
        lifecycle=_lifecycle(top, data),
        environments=_environments(top, data, {step.name for step in steps}),
        warnings=tuple(col.warnings),
        source=col.source,
    )
    check_graph(col, template)
    if len(col.warnings) != len(template.warnings):
        template = replace(template, warnings=tuple(col.warnings))
    return template


def _namespace(top: Scope, data: Mapping[Any, Any]) -> str | None:
    value = data.get("namespace_name")
    if value is None:
        top.problem("namespace_name", "is required")
        return None
    if not isinstance(value, str):
        top.problem("namespace_name", f"must be a string, got {show(value)}")
        return None
    if not value:
        top.problem("namespace_name", "must not be empty")
        return None
    good = True
    if len(value) > NAMESPACE_MAX:
        top.problem(
            "namespace_name",
            f"must be at most {NAMESPACE_MAX} characters (queue names are derived from it), "
            f"got {len(value)} in {show(value)}",
        )
        good = False
    if not _NAMESPACE_RE.fullmatch(value):
        top.problem(
            "namespace_name",
            f"may only contain letters, digits and underscores [A-Za-z0-9_], got {show(value)}",
        )
        good = False
    return value if good else None


def _steps(col: Collector, top: Scope, data: Mapping[Any, Any]) -> tuple[StepTemplate, ...]:
    raw = data.get("steps")
    if raw is None or (isinstance(raw, list | tuple) and not raw):
        top.problem("steps", "must list at least one step")
        return ()
    if not isinstance(raw, list | tuple):
        top.problem("steps", f"must be a list of steps, got {show(raw)}")
        return ()
    steps: list[StepTemplate] = []
    first_index: dict[str, int] = {}
    for index, item in enumerate(raw):
        step = parse_step(col, item, index)
        if step is None:
            continue
        if step.name in first_index:
            col.problem(
                f"step '{step.name}'",
                f"name: duplicate step name '{step.name}' (steps[{first_index[step.name]}] "
                f"and steps[{index}])",
            )
            continue
        first_index[step.name] = index
        steps.append(step)
    return tuple(steps)


def _metadata(top: Scope, data: Mapping[Any, Any]) -> TemplateMetadata | None:
    raw = top.mapping(data, "metadata")
    if raw is None:
        return None
    sub = top.child("metadata")
    sub.check_keys(raw, METADATA_KEYS)
    return TemplateMetadata(
        author=sub.text(raw, "author"),
        tags=sub.string_list(raw, "tags"),
        documentation_url=sub.text(raw, "documentation_url"),
        created_at=sub.timestamp(raw, "created_at"),
        updated_at=sub.timestamp(raw, "updated_at"),
    )


def _system_dependencies(top: Scope, data: Mapping[Any, Any]) -> SystemDependencies:
    raw = top.mapping(data, "system_dependencies")
    if raw is None:
        return SystemDependencies()
    sub = top.child("system_dependencies")
    sub.check_keys(raw, ("primary", "secondary"))
    return SystemDependencies(
        primary=sub.string(raw, "primary", default="default") or "default",
        secondary=sub.string_list(raw, "secondary"),
    )


def _domain_events(top: Scope, data: Mapping[Any, Any]) -> tuple[DomainEvent, ...]:
    events: list[DomainEvent] = []
    for index, raw in enumerate(top.items(data, "domain_events")):
        path = f"domain_events[{index}]"
        if not isinstance(raw, Mapping):
            top.problem(path, f"must be a mapping with at least 'name', got {show(raw)}")
            continue
        sub = top.child(path)
        sub.check_keys(raw, ("name", "description", "schema"))
        name = sub.string(raw, "name", required=True)
        description = sub.text(raw, "description")
        schema = sub.schema(raw, "schema")
        if name is not None:
            events.append(DomainEvent(name=name, description=description, schema=schema))
    return tuple(events)


def _lifecycle(top: Scope, data: Mapping[Any, Any]) -> Lifecycle | None:
    raw = top.mapping(data, "lifecycle")
    if raw is None:
        return None
    sub = top.child("lifecycle")
    sub.check_keys(raw, LIFECYCLE_KEYS)
    week = 7 * 24 * 60
    return Lifecycle(
        max_duration_minutes=sub.integer(raw, "max_duration_minutes", 1, 30 * 24 * 60, None),
        max_waiting_for_dependencies_minutes=sub.integer(
            raw, "max_waiting_for_dependencies_minutes", 1, week, None
        ),
        max_waiting_for_retry_minutes=sub.integer(
            raw, "max_waiting_for_retry_minutes", 1, week, None
        ),
        max_steps_in_process_minutes=sub.integer(
            raw, "max_steps_in_process_minutes", 1, week, None
        ),
        staleness_action=sub.choice(raw, "staleness_action", StalenessAction, StalenessAction.DLQ),
        auto_fail_on_timeout=sub.boolean(raw, "auto_fail_on_timeout", None),
        auto_dlq_on_timeout=sub.boolean(raw, "auto_dlq_on_timeout", None),
    )


def _environments(
    top: Scope, data: Mapping[Any, Any], step_names: set[str]
) -> dict[str, tuple[StepOverride, ...]]:
    raw = top.mapping(data, "environments")
    if raw is None:
        return {}
    out: dict[str, tuple[StepOverride, ...]] = {}
    for env, body in raw.items():
        if not isinstance(env, str) or not env:
            top.problem("environments", f"names must be non-empty strings, got {show(env)}")
            continue
        path = f"environments.{label(env)}"
        env_scope = top.child(path)
        if body is None:
            out[env] = ()
            continue
        if not isinstance(body, Mapping):
            top.problem(path, f"must be a mapping with 'steps', got {show(body)}")
            continue
        env_scope.check_keys(body, ("steps",))
        overrides = []
        for index, item in enumerate(env_scope.items(body, "steps")):
            override = _override(top.col, item, f"{path}.steps[{index}]", step_names)
            if override is not None:
                overrides.append(override)
        out[env] = tuple(overrides)
    return out


def _override(col: Collector, raw: object, path: str, step_names: set[str]) -> StepOverride | None:
    if not isinstance(raw, Mapping):
        col.problem(path, f"an override must be a mapping with 'name', got {show(raw)}")
        return None
    given = raw.get("name")
    where = f"{path} (step '{label(given)}')" if isinstance(given, str) and given else path
    sub = Scope(col, where)
    sub.check_keys(raw, OVERRIDE_KEYS)
    name = sub.string(raw, "name", required=True)
    if name is not None and name != ALL_STEPS and name not in step_names and step_names:
        sub.problem("name", f"'{name}' does not name a step of this template (or ALL)")
    initialization = None
    handler = sub.mapping(raw, "handler")
    if handler is not None:
        handler_scope = sub.child("handler")
        handler_scope.check_keys(handler, ("initialization",))
        initialization = handler_scope.json_object(handler, "initialization")
    retry_raw = sub.mapping(raw, "retry")
    retry = parse_retry_override(sub.child("retry"), retry_raw) if retry_raw is not None else None
    timeout = sub.integer(raw, "timeout_seconds", 1, MAX_TIMEOUT_SECONDS, None)
    if name is None:
        return None
    return StepOverride(
        name=name, initialization=initialization, timeout_seconds=timeout, retry=retry
    )
