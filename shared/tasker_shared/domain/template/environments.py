"""Applying `environments` step overrides to a template's steps (SPEC §4.1 resolve_for_environment)."""

from __future__ import annotations

from dataclasses import fields, replace

from .model import RetryOverride, RetryPolicy, StepOverride, StepTemplate

ALL_STEPS = "ALL"


def apply_overrides(
    steps: tuple[StepTemplate, ...], overrides: tuple[StepOverride, ...]
) -> tuple[StepTemplate, ...]:
    """`steps` with `overrides` (one environment's) applied in order.

    An entry named `ALL` applies to every step; later entries win. Initialization keys
    are merged into the handler's map, `timeout_seconds` replaces, and only the retry
    fields an override gives replace the step's (the rest keep the step's values).
    """
    return tuple(
        _apply_all(step, [o for o in overrides if o.name in (ALL_STEPS, step.name)])
        for step in steps
    )


def _apply_all(step: StepTemplate, overrides: list[StepOverride]) -> StepTemplate:
    for override in overrides:
        step = _apply(step, override)
    return step


def _apply(step: StepTemplate, override: StepOverride) -> StepTemplate:
    if override.initialization is not None:
        merged = {**step.handler.initialization, **override.initialization}
        step = replace(step, handler=replace(step.handler, initialization=merged))
    if override.timeout_seconds is not None:
        step = replace(step, timeout_seconds=override.timeout_seconds)
    if override.retry is not None:
        step = replace(step, retry=_merge_retry(step.retry, override.retry))
    return step


def _merge_retry(policy: RetryPolicy, override: RetryOverride) -> RetryPolicy:
    changes = {
        f.name: getattr(override, f.name)
        for f in fields(override)
        if getattr(override, f.name) is not None
    }
    return replace(policy, **changes)
