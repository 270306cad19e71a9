"""Property tests: whatever the input, parsing either succeeds or raises TemplateError."""

from __future__ import annotations

import copy
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tasker_shared.domain.template import (
    TaskTemplate,
    decision_graph_names,
    dependency_levels,
    initial_step_names,
    parse_template,
    parse_template_text,
    steps_for_decision,
    template_from_json,
)
from tasker_shared.errors import TemplateError, ValidationError

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "templates"
VALID_DATA = [yaml.safe_load(p.read_text()) for p in sorted(FIXTURES.glob("*.yaml"))]
STEP_NAMES = ["a", "b", "c", "d", "e"]
VOCABULARY = [
    "name",
    "namespace_name",
    "version",
    "description",
    "steps",
    "handler",
    "callable",
    "method",
    "resolver",
    "initialization",
    "type",
    "step_type",
    "dependencies",
    "depends_on",
    "retry",
    "retryable",
    "max_attempts",
    "limit",
    "backoff",
    "backoff_base_ms",
    "max_backoff_ms",
    "timeout_seconds",
    "batch_config",
    "worker_template",
    "batch_size",
    "parallelism",
    "cursor_field",
    "failure_strategy",
    "lifecycle",
    "staleness_action",
    "environments",
    "ALL",
    "test",
    "input_schema",
    "publishes_events",
    "condition",
    "delivery_mode",
    "metadata",
    "tags",
    "created_at",
    "domain_events",
    "schema",
    "system_dependencies",
    "primary",
    "secondary",
    "result_schema",
    "composition",
    "identity_strategy",
    "standard",
    "decision",
    "deferred_convergence",
    "batchable",
    "batch_worker",
    "exponential",
    "dlq",
    *STEP_NAMES,
]

SETTINGS = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(VOCABULARY),
    st.dates(min_value=date(1990, 1, 1), max_value=date(2100, 1, 1)),
    st.datetimes(timezones=st.just(UTC)),
    st.binary(max_size=4),
)
keys = st.one_of(
    st.sampled_from(VOCABULARY), st.text(max_size=6), st.integers(), st.none(), st.booleans()
)
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.lists(children, max_size=3).map(tuple),
        st.frozensets(st.integers(), max_size=3),
        st.dictionaries(keys, children, max_size=6),
    ),
    max_leaves=30,
)


def _parse(data: object) -> TaskTemplate | TemplateError:
    try:
        return parse_template(data, source="fuzz")
    except TemplateError as exc:
        return exc


def _check_outcome(data: object) -> None:
    outcome = _parse(data)
    if isinstance(outcome, TemplateError):
        assert outcome.problems
        assert all(p.startswith("fuzz: ") for p in outcome.problems)
    else:
        _exercise(outcome)


def _exercise(template: TaskTemplate) -> None:
    assert isinstance(template, TaskTemplate)
    data = template.to_json()
    assert template_from_json(data) == template
    initial = initial_step_names(template)
    for name in initial:  # the initial set never depends on a step created later
        assert set(template.step(name).dependencies) <= set(initial)
    levels = dependency_levels(template)
    assert set(levels) == set(template.step_names)
    for step in template.steps:
        if not step.is_decision:
            continue
        graph = sorted(decision_graph_names(template, step.name))
        for size in range(len(graph) + 1):
            try:
                plan = steps_for_decision(template, step.name, graph[:size], set(initial))
            except ValidationError:
                continue
            assert set(plan.step_names).isdisjoint(initial)
            for source, target in plan.edges:
                assert target in plan.step_names
                assert source in plan.step_names or source in initial or source == step.name
    for env in template.environments:
        template.resolve_for_environment(env)


@SETTINGS
@given(values)
def test_arbitrary_values(data: Any) -> None:
    _check_outcome(data)


def _step_strategy() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {"name": st.sampled_from(STEP_NAMES), "handler": st.just({"callable": "x.Y"})},
        optional={
            "type": st.sampled_from(
                [
                    "standard",
                    "decision",
                    "deferred_convergence",
                    "batchable",
                    "batch_worker",
                    "bogus",
                ]
            ),
            "dependencies": st.lists(st.sampled_from([*STEP_NAMES, "zz"]), max_size=3),
            "retry": st.dictionaries(st.sampled_from(VOCABULARY), values, max_size=3),
            "batch_config": st.fixed_dictionaries(
                {"worker_template": st.sampled_from(STEP_NAMES)},
                optional={"batch_size": values, "failure_strategy": values},
            ),
            "timeout_seconds": values,
        },
    )


@SETTINGS
@given(
    st.lists(_step_strategy(), min_size=1, max_size=6),
    st.dictionaries(st.sampled_from(VOCABULARY), values, max_size=3),
)
def test_template_shaped_mappings(steps: list[dict[str, Any]], extra: dict[str, Any]) -> None:
    data: dict[str, Any] = {
        "name": "fuzz",
        "namespace_name": "fuzz",
        "version": "1",
        "steps": steps,
    }
    data.update(extra)
    _check_outcome(data)


def _mutate(node: Any, data: st.DataObject, depth: int = 0) -> Any:
    """Replace, delete or add something somewhere inside `node`."""
    if isinstance(node, dict) and node and depth < 6 and data.draw(st.booleans()):
        key = data.draw(st.sampled_from(sorted(node, key=str)))
        node[key] = _mutate(node[key], data, depth + 1)
        return node
    if isinstance(node, list) and node and depth < 6 and data.draw(st.booleans()):
        index = data.draw(st.integers(0, len(node) - 1))
        node[index] = _mutate(node[index], data, depth + 1)
        return node
    action = data.draw(st.sampled_from(["replace", "delete", "add"]))
    if action == "delete" and isinstance(node, dict) and node:
        del node[data.draw(st.sampled_from(sorted(node, key=str)))]
        return node
    if action == "delete" and isinstance(node, list) and node:
        del node[data.draw(st.integers(0, len(node) - 1))]
        return node
    if action == "add" and isinstance(node, dict):
        node[data.draw(keys)] = data.draw(values)
        return node
    if action == "add" and isinstance(node, list):
        node.append(data.draw(values))
        return node
    return data.draw(values)


@SETTINGS
@given(st.sampled_from(range(len(VALID_DATA))), st.integers(1, 4), st.data())
def test_mutated_valid_templates(which: int, rounds: int, data: st.DataObject) -> None:
    template = copy.deepcopy(VALID_DATA[which])
    for _ in range(rounds):
        template = _mutate(template, data)
    _check_outcome(template)


@SETTINGS
@given(st.sampled_from(range(len(VALID_DATA))), st.data())
def test_mutated_yaml_text(which: int, data: st.DataObject) -> None:
    text = yaml.safe_dump(VALID_DATA[which], sort_keys=False)
    start = data.draw(st.integers(0, len(text)))
    end = data.draw(st.integers(start, min(len(text), start + 20)))
    insert = data.draw(st.text(alphabet=":-[]{}&*!|>'\"#\n ab1", max_size=8))
    mutated = text[:start] + insert + text[end:]
    try:
        template = parse_template_text(mutated, source="fuzz.yaml")
    except TemplateError as exc:
        problems = exc.problems
    else:
        _exercise(template)
        return
    assert all(p.startswith("fuzz.yaml: ") for p in problems)


@SETTINGS
@given(st.text(max_size=200))
def test_arbitrary_text(text: str) -> None:
    try:
        parse_template_text(text, source="fuzz.yaml")
    except TemplateError:
        pass


@SETTINGS
@given(values)
def test_from_json_of_arbitrary_values(data: Any) -> None:
    try:
        template_from_json(data)
    except TemplateError:
        pass


def test_valid_fixtures_pass_the_exercise() -> None:
    for data in VALID_DATA:
        _exercise(parse_template(data))
    assert datetime(2025, 1, 1, tzinfo=UTC).isoformat() == "2025-01-01T00:00:00+00:00"
