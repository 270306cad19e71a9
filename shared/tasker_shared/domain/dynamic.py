"""Plans for steps created at run time: decision outcomes (SPEC §5.1) and batch fan-out
(§5.2). Pure: the result processor applies a plan in the transaction that completes the
step that produced it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from tasker_shared.domain.template import TaskTemplate
from tasker_shared.domain.template.graph import (
    convergence_steps_for_worker_template,
    steps_for_decision,
)
from tasker_shared.domain.template.model import StepTemplate
from tasker_shared.errors import ValidationError

TEMPLATE_STEP_KEY = "__template_step_name"


@dataclass(frozen=True, kw_only=True, slots=True)
class DynamicPlan:
    """Step rows and edges to create (rows as `tasker.create_steps_v1` takes them)."""

    steps: list[dict[str, Any]]
    edges: list[dict[str, str]]

    @property
    def empty(self) -> bool:
        return not self.steps and not self.edges


def step_row(step: StepTemplate, *, name: str | None = None,
             inputs: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The JSON row `tasker.create_steps_v1` takes for one template step."""
    return {
        "name": name or step.name,
        "retryable": step.retry.retryable,
        "max_attempts": step.retry.max_attempts,
        "inputs": dict(step.handler.initialization if inputs is None else inputs),
    }


def decision_depth(template: TaskTemplate, decision_step: str) -> int:
    """How many decision steps lie on the deepest path to `decision_step`, itself included."""
    memo: dict[str, int] = {}

    def depth(name: str) -> int:
        if name not in memo:
            memo[name] = 0  # guards against malformed cycles
            step = template.step(name)
            parents = [depth(dep) for dep in step.dependencies if template.has_step(dep)]
            memo[name] = max(parents, default=0) + (1 if step.is_decision else 0)
        return memo[name]

    return depth(decision_step)


def plan_decision(
    template: TaskTemplate,
    decision_step: str,
    outcome: Any,
    existing: Iterable[str],
    *,
    max_steps: int,
    max_depth: int,
) -> DynamicPlan:
    """Steps and edges a `decision_point_outcome` creates; ValidationError names the problem."""
    if not isinstance(outcome, Mapping):
        raise ValidationError(
            f"decision step '{decision_step}': decision_point_outcome must be an object"
        )
    kind = outcome.get("type")
    if kind == "no_branches":
        return DynamicPlan(steps=[], edges=[])
    if kind != "create_steps":
        raise ValidationError(
            f"decision step '{decision_step}': decision_point_outcome.type must be "
            f"'create_steps' or 'no_branches', got {kind!r}"
        )
    names = outcome.get("step_names")
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ValidationError(
            f"decision step '{decision_step}': step_names must be a list of step names"
        )
    depth = decision_depth(template, decision_step)
    if depth > max_depth:
        raise ValidationError(
            f"decision step '{decision_step}' is nested {depth} decisions deep; "
            f"the limit is {max_depth}"
        )
    plan = steps_for_decision(template, decision_step, names, existing)
    if len(plan.step_names) > max_steps:
        raise ValidationError(
            f"decision step '{decision_step}' would create {len(plan.step_names)} steps "
            f"(requested {', '.join(names)}); the limit is {max_steps}"
        )
    return DynamicPlan(
        steps=[step_row(template.step(n)) for n in plan.step_names],
        edges=[{"from": a, "to": b, "name": "provides"} for a, b in plan.edges],
    )


def decision_warnings(
    template: TaskTemplate, decision_step: str, plan: DynamicPlan, *, warn_steps: int,
    warn_depth: int,
) -> list[str]:
    """Why an accepted decision plan is close to the limits (for a warning), if it is."""
    found: list[str] = []
    if len(plan.steps) > warn_steps:
        found.append(f"decision step '{decision_step}' creates {len(plan.steps)} steps "
                     f"(warning threshold {warn_steps})")
    depth = decision_depth(template, decision_step)
    if depth > warn_depth:
        found.append(f"decision step '{decision_step}' is nested {depth} decisions deep "
                     f"(warning threshold {warn_depth})")
    return found


def _worker_template(template: TaskTemplate, name: object, batchable: str) -> StepTemplate:
    if not isinstance(name, str) or not template.has_step(name):
        raise ValidationError(
            f"batchable step '{batchable}': worker template {name!r} is not a step of "
            f"template {template.key}"
        )
    step = template.step(name)
    if not step.is_batch_worker:
        raise ValidationError(
            f"batchable step '{batchable}': worker template '{name}' is a "
            f"{step.step_type} step, not a batch_worker"
        )
    if step.batch_config is None:
        raise ValidationError(
            f"batchable step '{batchable}': worker template '{name}' has no batch_config"
        )
    return step


def _cursor(config: object, index: int, batchable: str) -> dict[str, Any]:
    if not isinstance(config, Mapping) or "batch_id" not in config:
        raise ValidationError(
            f"batchable step '{batchable}': cursor_configs[{index}] must be an object "
            "with batch_id, start_cursor, end_cursor and batch_size"
        )
    batch_id = str(config["batch_id"])
    if not batch_id or not all(c.isalnum() or c == "_" for c in batch_id):
        raise ValidationError(
            f"batchable step '{batchable}': cursor_configs[{index}].batch_id {batch_id!r} "
            "must be letters, digits or underscores"
        )
    return {
        "batch_id": batch_id,
        "start_cursor": config.get("start_cursor"),
        "end_cursor": config.get("end_cursor"),
        "batch_size": config.get("batch_size"),
    }


def plan_batches(
    template: TaskTemplate,
    batchable_step: str,
    outcome: Any,
    existing: Iterable[str],
    *,
    max_batches: int,
) -> DynamicPlan:
    """Workers, convergence steps and edges a `batch_processing_outcome` creates.

    `no_batches` creates one no-op placeholder worker (and the convergence steps) when a
    worker template is named, by the outcome or the analyser's `worker_template_name`
    initialization; without one it creates nothing."""
    if not isinstance(outcome, Mapping):
        raise ValidationError(
            f"batchable step '{batchable_step}': batch_processing_outcome must be an object"
        )
    kind = outcome.get("type")
    if kind == "no_batches":
        init = template.step(batchable_step).handler.initialization
        worker_name = outcome.get("worker_template_name") or init.get("worker_template_name")
        if worker_name is None:
            # Nothing to process and no worker template named (as tasker-core, whose
            # placeholder needs one): the analyser completes alone, the task goes on.
            return DynamicPlan(steps=[], edges=[])
        worker = _worker_template(template, worker_name, batchable_step)
        cursors = [{"batch_id": "000", "start_cursor": 0, "end_cursor": 0, "batch_size": 0}]
        no_op = True
    elif kind == "create_batches":
        worker = _worker_template(template, outcome.get("worker_template_name"), batchable_step)
        raw = outcome.get("cursor_configs")
        if not isinstance(raw, list) or not raw:
            raise ValidationError(
                f"batchable step '{batchable_step}': create_batches needs a non-empty "
                "cursor_configs list"
            )
        if len(raw) > max_batches:
            raise ValidationError(
                f"batchable step '{batchable_step}' asked for {len(raw)} batches; "
                f"the limit is {max_batches}"
            )
        cursors = [_cursor(c, i, batchable_step) for i, c in enumerate(raw)]
        ids = [c["batch_id"] for c in cursors]
        if len(set(ids)) != len(ids):
            raise ValidationError(f"batchable step '{batchable_step}': duplicate batch ids")
        no_op = False
    else:
        raise ValidationError(
            f"batchable step '{batchable_step}': batch_processing_outcome.type must be "
            f"'create_batches' or 'no_batches', got {kind!r}"
        )
    assert worker.batch_config is not None
    have = set(existing)
    steps: list[dict[str, Any]] = []
    edges: list[dict[str, str]] = []
    worker_names: list[str] = []
    for cursor in cursors:
        name = f"{worker.name}_{cursor['batch_id']}"
        worker_names.append(name)
        inputs = dict(worker.handler.initialization)
        inputs.update({
            "cursor": cursor,
            "batch_metadata": {
                "cursor_field": worker.batch_config.cursor_field,
                "failure_strategy": str(worker.batch_config.failure_strategy),
                "batchable_step": batchable_step,
            },
            "is_no_op": no_op,
            TEMPLATE_STEP_KEY: worker.name,
        })
        steps.append(step_row(worker, name=name, inputs=inputs))
        edges.append({"from": batchable_step, "to": name, "name": "batch_dependency"})
    for conv_name in convergence_steps_for_worker_template(template, worker.name):
        conv = template.step(conv_name)
        if conv_name not in have:
            steps.append(step_row(conv))
        for name in worker_names:
            edges.append({"from": name, "to": conv_name, "name": "worker_to_convergence"})
        for dep in conv.dependencies:
            if dep != worker.name and (dep in have or dep == batchable_step):
                edges.append({"from": dep, "to": conv_name, "name": "provides"})
    return DynamicPlan(steps=steps, edges=edges)
