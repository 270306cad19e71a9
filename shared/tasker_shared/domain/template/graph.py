"""Pure graph computations on a template: initial set, decision graphs and plans (§4.3, §5)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ...errors import ValidationError
from .enums import StepType
from .preview import show
from .task import TaskTemplate

_NOT_CREATED_BY_CLOSURE = (StepType.DEFERRED_CONVERGENCE, StepType.BATCH_WORKER)


@dataclass(frozen=True, kw_only=True, slots=True)
class DecisionPlan:
    """What a decision outcome creates: step names (declaration order) and edges.

    Each edge is `(from_step, to_step)`; the dependency edge is named `provides`.
    """

    decision_step: str
    step_names: tuple[str, ...]
    edges: tuple[tuple[str, str], ...]


def dependents_map(template: TaskTemplate) -> dict[str, list[str]]:
    """For each step, the steps that declare it as a dependency (declaration order)."""
    out: dict[str, list[str]] = {step.name: [] for step in template.steps}
    for step in template.steps:
        for dep in step.dependencies:
            if dep in out:
                out[dep].append(step.name)
    return out


def reachable(
    dependents: dict[str, list[str]], starts: Iterable[str], stop: set[str] | frozenset[str]
) -> set[str]:
    """Steps reachable by following dependents from `starts` (inclusive); `stop` members are
    included but not expanded."""
    seen: set[str] = set()
    stack = list(starts)
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        seen.add(name)
        if name not in stop:
            stack.extend(dependents.get(name, ()))
    return seen


def decision_names(template: TaskTemplate) -> list[str]:
    return [step.name for step in template.steps if step.is_decision]


def downstream_of_decisions(template: TaskTemplate) -> set[str]:
    """Every step that (transitively) depends on some decision step."""
    dependents = dependents_map(template)
    starts = [child for name in decision_names(template) for child in dependents[name]]
    return reachable(dependents, starts, frozenset())


def initial_step_names(template: TaskTemplate) -> list[str]:
    """Steps created with the task: all but batch workers, deferred convergence steps and
    anything downstream of a decision (a decision step itself is included)."""
    downstream = downstream_of_decisions(template)
    return [
        step.name
        for step in template.steps
        if step.created_at_initialization and step.name not in downstream
    ]


def _decision_step(template: TaskTemplate, decision_step: str) -> None:
    step = template.get_step(decision_step)
    if step is None:
        raise ValidationError(f"template {template.key} has no step named {show(decision_step)}")
    if not step.is_decision:
        raise ValidationError(
            f"step '{decision_step}' of template {template.key} is of type "
            f"{step.step_type.value}, not a decision step"
        )


def _decision_graph(template: TaskTemplate, decision_step: str) -> set[str]:
    dependents = dependents_map(template)
    decisions = frozenset(decision_names(template))
    return reachable(dependents, dependents[decision_step], decisions)


def decision_graph_names(template: TaskTemplate, decision_step: str) -> set[str]:
    """Steps reachable from `decision_step`, stopping at nested decisions (which are
    included as the graph's exits)."""
    _decision_step(template, decision_step)
    return _decision_graph(template, decision_step)


def steps_for_decision(
    template: TaskTemplate,
    decision_step: str,
    requested: Sequence[str],
    existing: Iterable[str] = (),
) -> DecisionPlan:
    """The §5.1 fixed point: which steps and edges a `create_steps` outcome creates.

    `existing` are the task's steps that already exist; they are never re-created but
    provide edges. Raises ValidationError for a name outside the decision's graph.
    """
    _decision_step(template, decision_step)
    graph = _decision_graph(template, decision_step)
    for name in requested:
        if not isinstance(name, str):
            raise ValidationError(
                f"decision step '{decision_step}' requested {show(name)}; step names are strings"
            )
    wanted = list(dict.fromkeys(requested))
    if wanted and not graph:
        raise ValidationError(
            f"decision step '{decision_step}' has no downstream steps, "
            f"but its outcome requested '{wanted[0]}'"
        )
    for name in wanted:
        _check_requested(template, decision_step, graph, name)
    have = set(existing)
    chosen = _fixed_point(template, decision_step, graph, set(wanted), have)
    new_steps = tuple(s.name for s in template.steps if s.name in chosen and s.name not in have)
    available = chosen | have | {decision_step}
    edges: dict[tuple[str, str], None] = {}
    for name in new_steps:
        step = template.step(name)
        for dep in step.dependencies:
            if dep in available:
                edges[(dep, name)] = None
            elif not step.is_deferred_convergence:
                edges[(decision_step, name)] = None
    # A convergence step created earlier (by another decision) also waits for the new
    # steps among its declared dependencies: intersection with what exists now.
    created = set(new_steps)
    for step in template.steps:
        if step.is_deferred_convergence and step.name in have:
            for dep in step.dependencies:
                if dep in created:
                    edges[(dep, step.name)] = None
    return DecisionPlan(decision_step=decision_step, step_names=new_steps, edges=tuple(edges))


def _check_requested(template: TaskTemplate, decision: str, graph: set[str], name: str) -> None:
    if name not in graph:
        raise ValidationError(
            f"step {show(name)} is not a descendant of decision step '{decision}' "
            f"in template {template.key}"
        )
    if template.step(name).is_batch_worker:
        raise ValidationError(
            f"step '{name}' is a batch_worker template and cannot be created by "
            f"decision step '{decision}'"
        )


def _fixed_point(
    template: TaskTemplate, decision: str, graph: set[str], chosen: set[str], have: set[str]
) -> set[str]:
    dependents = dependents_map(template)
    changed = True
    while changed:
        changed = False
        # Dependents inside the decision's graph, not expanding past deferred steps,
        # batch worker templates or nested decisions (the graph's exits).
        stack = [name for name in chosen if _expands(template, name, decision)]
        while stack:
            for child in dependents[stack.pop()]:
                step = template.step(child)
                if child in chosen or child in have or child not in graph:
                    continue
                if step.step_type in _NOT_CREATED_BY_CLOSURE:
                    continue
                chosen.add(child)
                changed = True
                if _expands(template, child, decision):
                    stack.append(child)
        for step in template.steps:
            if step.name in chosen or step.name in have:
                continue
            if step.is_deferred_convergence and chosen.intersection(step.dependencies):
                # A convergence step: created with whichever of its parents exist.
                chosen.add(step.name)
                changed = True
            elif _after_convergence(template, step.name, chosen, have | {decision}):
                chosen.add(step.name)
                changed = True
    return chosen


def _expands(template: TaskTemplate, name: str, decision: str) -> bool:
    step = template.step(name)
    if step.step_type in _NOT_CREATED_BY_CLOSURE:
        return False
    return not (step.is_decision and name != decision)


def _after_convergence(
    template: TaskTemplate, name: str, chosen: set[str], available: set[str]
) -> bool:
    """A step after a convergence step being created, whose parents will all exist."""
    step = template.step(name)
    if step.step_type in _NOT_CREATED_BY_CLOSURE or not step.dependencies:
        return False
    follows_convergence = any(
        dep in chosen and template.step(dep).is_deferred_convergence for dep in step.dependencies
    )
    return follows_convergence and all(
        dep in chosen or dep in available for dep in step.dependencies
    )


def convergence_steps_for_worker_template(
    template: TaskTemplate, worker_template_name: str
) -> list[str]:
    """Deferred convergence steps that depend on the named batch worker template."""
    return [
        step.name
        for step in template.steps
        if step.is_deferred_convergence and worker_template_name in step.dependencies
    ]


def dependency_levels(template: TaskTemplate) -> dict[str, int]:
    """Longest path from a root (level 0) to each step; steps on a cycle are left out."""
    dependents = dependents_map(template)
    waiting = {
        step.name: sum(1 for dep in step.dependencies if dep in dependents)
        for step in template.steps
    }
    levels = {name: 0 for name, count in waiting.items() if count == 0}
    ready = [step.name for step in template.steps if waiting[step.name] == 0]
    while ready:
        name = ready.pop()
        for child in dependents[name]:
            levels[child] = max(levels.get(child, 0), levels[name] + 1)
            waiting[child] -= 1
            if waiting[child] == 0:
                ready.append(child)
    return {step.name: levels[step.name] for step in template.steps if waiting[step.name] == 0}
