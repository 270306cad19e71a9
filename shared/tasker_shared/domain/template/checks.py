"""Cross-step checks: dependencies, cycles, decision graphs and batch roles (SPEC §4-§5)."""

from __future__ import annotations

from collections import deque

from .enums import StepType
from .graph import decision_names, dependents_map, downstream_of_decisions, reachable
from .model import StepTemplate
from .reader import Collector
from .task import TaskTemplate


def check_graph(col: Collector, template: TaskTemplate) -> None:
    """Record every structural problem of the template's step graph in `col`."""
    sound = _check_dependencies(col, template)
    if sound:
        sound = _check_cycles(col, template)
    _check_batch(col, template)
    if sound:
        _check_decisions(col, template)
        _check_convergence(col, template)


def _where(step: StepTemplate) -> str:
    return f"step '{step.name}'"


def _check_dependencies(col: Collector, template: TaskTemplate) -> bool:
    sound = True
    for step in template.steps:
        for dep in step.dependencies:
            if dep == step.name:
                col.problem(
                    _where(step),
                    f"dependencies lists the step itself ('{dep}'): self-dependency is not allowed",
                )
                sound = False
            elif not template.has_step(dep):
                col.problem(
                    _where(step),
                    f"dependencies: unknown dependency '{dep}' (no step has that name)",
                )
                sound = False
    return sound


def _check_cycles(col: Collector, template: TaskTemplate) -> bool:
    """Report one cycle per strongly connected component of the 'depends on' graph."""
    order = {step.name: i for i, step in enumerate(template.steps)}
    edges = {step.name: list(step.dependencies) for step in template.steps}
    sound = True
    for component in _strong_components(edges):
        if len(component) < 2:
            continue
        start = min(component, key=order.__getitem__)
        path = _cycle_through(edges, component, start)
        col.problem(
            f"step '{start}'",
            "dependencies form a cycle: " + " -> ".join(path) + " (each step depends on the next)",
        )
        sound = False
    return sound


def _strong_components(edges: dict[str, list[str]]) -> list[set[str]]:
    """Tarjan's algorithm, iterative so that long chains cannot exhaust the stack."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[set[str]] = []
    for root in edges:
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            node, pos = work.pop()
            if pos == 0:
                index[node] = low[node] = len(index)
                stack.append(node)
                on_stack.add(node)
            children = edges[node]
            if pos < len(children):
                work.append((node, pos + 1))
                child = children[pos]
                if child not in index:
                    work.append((child, 0))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            for child in children:
                if child in on_stack:
                    low[node] = min(low[node], low[child])
            if low[node] == index[node]:
                component: set[str] = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                components.append(component)
    return components


def _cycle_through(edges: dict[str, list[str]], component: set[str], start: str) -> list[str]:
    """The shortest cycle from `start` back to itself inside one component."""
    parent: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for child in edges[node]:
            if child not in component:
                continue
            if child == start:
                path = [node]
                while path[-1] != start:
                    path.append(parent[path[-1]])
                return [start, *reversed(path[:-1]), start] if node != start else [start, start]
            if child not in parent:
                parent[child] = node
                queue.append(child)
    return [start, start]  # pragma: no cover - a strong component always has a cycle


def _check_batch(col: Collector, template: TaskTemplate) -> None:
    for step in template.steps:
        config = step.batch_config
        if step.is_batch_worker and config is None:
            col.problem(_where(step), "batch_config is required on a step of type batch_worker")
        if config is not None and step.step_type not in (
            StepType.BATCH_WORKER,
            StepType.BATCHABLE,
        ):
            col.warn(
                _where(step),
                f"batch_config is ignored on a step of type {step.step_type.value}",
            )
        elif config is not None and config.worker_template:
            target = template.get_step(config.worker_template)
            if target is None or not target.is_batch_worker:
                col.problem(
                    _where(step),
                    f"batch_config.worker_template '{config.worker_template}' does not name "
                    "a step of type batch_worker",
                )
        _check_batch_dependencies(col, template, step)


def _check_batch_dependencies(col: Collector, template: TaskTemplate, step: StepTemplate) -> None:
    parents = [template.get_step(dep) for dep in step.dependencies]
    if step.is_batch_worker and not any(p is not None and p.is_batchable for p in parents):
        col.problem(
            _where(step),
            "dependencies: a batch_worker template must depend on a batchable step",
        )
    if not step.is_deferred_convergence:
        for parent in parents:
            if parent is not None and parent.is_batch_worker:
                col.problem(
                    _where(step),
                    f"dependencies: '{parent.name}' is a batch_worker template; only "
                    "deferred_convergence steps may depend on a batch_worker template",
                )


def _check_decisions(col: Collector, template: TaskTemplate) -> None:
    dependents = dependents_map(template)
    decisions = decision_names(template)
    boundary = frozenset(decisions) | {s.name for s in template.steps if s.is_deferred_convergence}
    branches: dict[str, list[str]] = {}
    for decision in decisions:
        step = template.step(decision)
        if not step.dependencies:
            col.problem(
                _where(step), "dependencies: a decision step must have at least one dependency"
            )
        if not dependents[decision]:
            col.warn(_where(step), "decision step has no downstream steps to create")
        for name in reachable(dependents, dependents[decision], boundary):
            branches.setdefault(name, []).append(decision)
    for step in template.steps:
        owners = branches.get(step.name, [])
        if len(owners) > 1 and not step.is_deferred_convergence:
            listed = " and ".join(f"'{o}'" for o in owners)
            col.problem(
                _where(step),
                f"type: the step joins branches of decision steps {listed}, so it must be "
                "of type deferred_convergence (it cannot know which branches will run)",
            )


def _check_convergence(col: Collector, template: TaskTemplate) -> None:
    downstream = downstream_of_decisions(template)
    creatable: set[str] = set()
    deferred = [s for s in template.steps if s.is_deferred_convergence]
    grew = True
    while grew:
        grew = False
        for step in deferred:
            if step.name in creatable:
                continue
            if any(
                dep in downstream or dep in creatable or template.step(dep).is_batch_worker
                for dep in step.dependencies
            ):
                creatable.add(step.name)
                grew = True
    for step in deferred:
        if not step.dependencies:
            col.problem(
                _where(step),
                "dependencies: a deferred_convergence step must declare its possible parents",
            )
        elif step.name not in creatable:
            col.problem(
                _where(step),
                "type: this deferred_convergence step would never be created: none of its "
                "dependencies is created by a decision step or is a batch_worker template",
            )
    for step in template.steps:
        if step.is_deferred_convergence or step.name in downstream:
            continue
        for dep in step.dependencies:
            if template.step(dep).is_deferred_convergence and not step.is_batch_worker:
                col.problem(
                    _where(step),
                    f"dependencies: '{dep}' is a deferred_convergence step but this step is "
                    "not downstream of a decision, so it would be created at task start "
                    "before its dependency exists",
                )
