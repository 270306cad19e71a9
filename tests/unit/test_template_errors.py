"""Each class of template error produces its own message naming the source, step and field."""

from __future__ import annotations

import math
from typing import Any

import pytest

from tasker_shared.domain.template import parse_template
from tasker_shared.domain.template.reader import MAX_DEPTH
from tasker_shared.errors import TemplateError


def _template(*steps: dict[str, Any], **top: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "t",
        "namespace_name": "ns",
        "version": "1",
        "steps": list(steps) or [{"name": "a", "handler": {"callable": "x.A"}}],
    }
    data.update(top)
    return data


def _step(name: str = "a", **fields: Any) -> dict[str, Any]:
    return {"name": name, "handler": {"callable": f"x.{name}"}, **fields}


def _problems(data: object) -> list[str]:
    with pytest.raises(TemplateError) as info:
        parse_template(data, source="t.yaml")
    prefix = "t.yaml: "
    assert all(p.startswith(prefix) for p in info.value.problems)
    return [p[len(prefix) :] for p in info.value.problems]


def test_required_top_level_fields() -> None:
    assert _problems({}) == [
        "name is required",
        "namespace_name is required",
        "version is required",
        "steps must list at least one step",
    ]


@pytest.mark.parametrize(
    ("top", "expected"),
    [
        ({"name": 3}, "name must be a string, got 3"),
        ({"namespace_name": ["a"]}, "namespace_name must be a string, got ['a']"),
        ({"namespace_name": ""}, "namespace_name must not be empty"),
        ({"version": ""}, "version must be 1 to 50 characters long, got 0"),
        ({"version": True}, "version must be a string, got True"),
        ({"description": 12}, "description must be a string, got 12"),
        ({"steps": {"a": 1}}, "steps must be a list of steps, got {'a': 1}"),
        ({"steps": None}, "steps must list at least one step"),
        ({"steps": ["a"]}, "steps[0]: a step must be a mapping, got 'a'"),
        (
            {"identity_strategy": "sometimes"},
            "identity_strategy must be one of strict, caller_provided, always_unique, "
            "got 'sometimes'",
        ),
        ({"metadata": "me"}, "metadata must be a mapping, got 'me'"),
        ({"metadata": {"tags": "x"}}, "metadata.tags must be a list of strings, got 'x'"),
        ({"metadata": {"tags": ["ok", ""]}}, "metadata.tags[1] must be a non-empty string, got ''"),
        (
            {"metadata": {"created_at": "yesterday"}},
            "metadata.created_at must be an ISO 8601 date-time, got 'yesterday'",
        ),
        ({"metadata": {"author": 5}}, "metadata.author must be a string, got 5"),
        (
            {"metadata": {"updated_at": 5}},
            "metadata.updated_at must be an ISO 8601 date-time, got 5",
        ),
        (
            {"system_dependencies": {"primary": ""}},
            "system_dependencies.primary must be 1 to 255 characters long, got 0",
        ),
        ({"domain_events": "x"}, "domain_events must be a list, got 'x'"),
        (
            {"domain_events": [7]},
            "domain_events[0] must be a mapping with at least 'name', got 7",
        ),
        ({"domain_events": [{}]}, "domain_events[0].name is required"),
        (
            {"domain_events": [{"name": "e", "schema": 5}]},
            "domain_events[0].schema must be a JSON Schema (a mapping), got 5",
        ),
        (
            {"input_schema": "string"},
            "input_schema must be a JSON Schema (a mapping), got 'string'",
        ),
        (
            {"input_schema": {"$schema": 5}},
            "input_schema is not a valid JSON Schema: $schema must be a string naming a JSON "
            "Schema draft",
        ),
        (
            {"input_schema": {"type": "object", "properties": {"a": {"pattern": "("}}}},
            "input_schema is not a valid JSON Schema: '(' is not a 'regex' (at "
            "$.properties.a.pattern)",
        ),
        ({"lifecycle": 3}, "lifecycle must be a mapping, got 3"),
        ({"environments": []}, "environments must be a mapping, got []"),
        ({"environments": {3: {}}}, "environments names must be non-empty strings, got 3"),
        (
            {"environments": {"test": "all"}},
            "environments.test must be a mapping with 'steps', got 'all'",
        ),
        (
            {"environments": {"test": {"steps": "all"}}},
            "environments.test.steps must be a list, got 'all'",
        ),
        (
            {"environments": {"test": {"steps": [5]}}},
            "environments.test.steps[0]: an override must be a mapping with 'name', got 5",
        ),
        (
            {"environments": {"test": {"steps": [{"timeout_seconds": 5}]}}},
            "environments.test.steps[0]: name is required",
        ),
        (
            {
                "environments": {
                    "test": {"steps": [{"name": "a", "handler": {"initialization": 5}}]}
                }
            },
            "environments.test.steps[0] (step 'a'): handler.initialization must be a mapping, "
            "got 5",
        ),
        (
            {"environments": {"test": {"steps": [{"name": "a", "retry": {"backoff": "x"}}]}}},
            "environments.test.steps[0] (step 'a'): retry.backoff must be one of none, linear, "
            "exponential, fibonacci, got 'x'",
        ),
    ],
)
def test_top_level_field_problems(top: dict[str, Any], expected: str) -> None:
    assert _problems(_template(**top)) == [expected]


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"name": None}, "steps[0]: name is required"),
        ({"name": ""}, "steps[0]: name must be 1 to 255 characters long, got 0"),
        ({"name": 4}, "steps[0]: name must be a string, got 4"),
        (
            {"handler": "x.A"},
            "step 'a': handler must be a mapping with at least 'callable', got 'x.A'",
        ),
        ({"handler": {}}, "step 'a': handler.callable is required"),
        (
            {"handler": {"callable": "x" * 501}},
            "step 'a': handler.callable must be 1 to 500 characters long, got 501",
        ),
        (
            {"handler": {"callable": "x", "method": 3}},
            "step 'a': handler.method must be a string, got 3",
        ),
        (
            {"type": "parallel"},
            "step 'a': type must be one of standard, decision, "
            "deferred_convergence, batchable, batch_worker, got 'parallel'",
        ),
        ({"depends_on": [1]}, "step 'a': depends_on[0] must be a non-empty string, got 1"),
        ({"retry": "always"}, "step 'a': retry must be a mapping, got 'always'"),
        (
            {"retry": {"max_attempts": 101}},
            "step 'a': retry.max_attempts must be an integer between 0 and 100, got 101",
        ),
        (
            {"retry": {"max_attempts": True}},
            "step 'a': retry.max_attempts must be an integer between 0 and 100, got True",
        ),
        (
            {"retry": {"max_attempts": 2.0}},
            "step 'a': retry.max_attempts must be an integer between 0 and 100, got 2.0",
        ),
        (
            {"retry": {"backoff_base_ms": -1}},
            "step 'a': retry.backoff_base_ms must be an integer between 0 and 3600000, got -1",
        ),
        (
            {"retry": {"max_backoff_ms": "1s"}},
            "step 'a': retry.max_backoff_ms must be an integer between 0 and 3600000, got '1s'",
        ),
        ({"system_dependency": 1}, "step 'a': system_dependency must be a string, got 1"),
        ({"publishes_events": {}}, "step 'a': publishes_events must be a list, got {}"),
        (
            {"publishes_events": ["e"]},
            "step 'a': publishes_events[0] must be a mapping with at least 'name', got 'e'",
        ),
        (
            {"publishes_events": [{"name": "e", "condition": "maybe"}]},
            "step 'a': publishes_events[0].condition must be one of success, failure, "
            "retryable_failure, permanent_failure, always, got 'maybe'",
        ),
        (
            {"publishes_events": [{"name": "e", "delivery_mode": "carrier pigeon"}]},
            "step 'a': publishes_events[0].delivery_mode must be one of durable, fast, broadcast, "
            "got 'carrier pigeon'",
        ),
        (
            {"publishes_events": [{"description": "no name"}]},
            "step 'a': publishes_events[0].name is required",
        ),
        ({"batch_config": [1]}, "step 'a': batch_config must be a mapping, got [1]"),
        (
            {"result_schema": "x"},
            "step 'a': result_schema must be a JSON Schema (a mapping), got 'x'",
        ),
        (
            {"composition": {"f": math.nan}},
            "step 'a': composition.f must be a finite number, got nan",
        ),
        (
            {"composition": {"s": {1, 2}}},
            "step 'a': composition.s must be plain JSON data, got a set",
        ),
        ({"composition": {1: "x"}}, "step 'a': composition has a non-string key 1"),
        ({"composition": [b"x"]}, "step 'a': composition[0] must be plain JSON data, got a bytes"),
    ],
)
def test_step_field_problems(fields: dict[str, Any], expected: str) -> None:
    assert _problems(_template(_step(**fields))) == [expected]


def test_problems_are_collected_across_steps_and_levels() -> None:
    problems = _problems(
        _template(
            _step("a", retry={"max_attempts": -1}),
            _step("b", dependencies=["a", "zzz"], timeout_seconds="soon"),
            _step("a"),
            namespace_name="bad-ns",
        )
    )
    assert problems == [
        "namespace_name may only contain letters, digits and underscores [A-Za-z0-9_], "
        "got 'bad-ns'",
        "step 'a': retry.max_attempts must be an integer between 0 and 100, got -1",
        "step 'b': timeout_seconds must be an integer between 1 and 4294967295, got 'soon'",
        "step 'a': name: duplicate step name 'a' (steps[0] and steps[2])",
        "step 'b': dependencies: unknown dependency 'zzz' (no step has that name)",
    ]


def test_cycle_paths_are_reported_once_per_cycle() -> None:
    problems = _problems(
        _template(
            _step("a", dependencies=["b"]),
            _step("b", dependencies=["a"]),
            _step("c", dependencies=["d", "a"]),
            _step("d", dependencies=["e"]),
            _step("e", dependencies=["c"]),
        )
    )
    assert problems == [
        "step 'a': dependencies form a cycle: a -> b -> a (each step depends on the next)",
        "step 'c': dependencies form a cycle: c -> d -> e -> c (each step depends on the next)",
    ]


def test_long_chains_do_not_exhaust_the_stack() -> None:
    steps = [_step("s0")] + [_step(f"s{i}", dependencies=[f"s{i - 1}"]) for i in range(1, 3000)]
    steps[0]["dependencies"] = ["s2999"]
    problems = _problems(_template(*steps))
    assert len(problems) == 1
    assert problems[0].startswith("step 's0': dependencies form a cycle: s0 -> s2999 -> s2998")


def test_batch_role_problems() -> None:
    problems = _problems(
        _template(
            _step("plan", type="batchable", batch_config={"worker_template": "nobody"}),
            _step(
                "work",
                type="batch_worker",
                dependencies=["plan"],
                batch_config={"worker_template": "work"},
            ),
            _step("orphan", type="batch_worker", batch_config={"worker_template": "orphan"}),
            _step("after", dependencies=["work"]),
            _step("sum", type="deferred_convergence", dependencies=["work"]),
        )
    )
    assert problems == [
        "step 'plan': batch_config.worker_template 'nobody' does not name a step of type "
        "batch_worker",
        "step 'orphan': dependencies: a batch_worker template must depend on a batchable step",
        "step 'after': dependencies: 'work' is a batch_worker template; only "
        "deferred_convergence steps may depend on a batch_worker template",
    ]


def test_batch_config_on_a_standard_step_is_only_a_warning() -> None:
    template = parse_template(_template(_step(batch_config={"worker_template": "a"})))
    assert template.warnings == (
        "<template>: step 'a': batch_config is ignored on a step of type standard",
    )


def test_convergence_problems() -> None:
    problems = _problems(
        _template(
            _step("start"),
            _step("empty", type="deferred_convergence"),
            _step("sum", type="deferred_convergence", dependencies=["start"]),
            _step("report", dependencies=["sum"]),
        )
    )
    assert problems == [
        "step 'empty': dependencies: a deferred_convergence step must declare its possible parents",
        "step 'sum': type: this deferred_convergence step would never be created: none of its "
        "dependencies is created by a decision step or is a batch_worker template",
        "step 'report': dependencies: 'sum' is a deferred_convergence step but this step is "
        "not downstream of a decision, so it would be created at task start before its "
        "dependency exists",
    ]


def test_decision_without_downstream_steps_is_a_warning() -> None:
    template = parse_template(
        _template(_step("a"), _step("d", type="decision", dependencies=["a"]))
    )
    assert template.warnings == (
        "<template>: step 'd': decision step has no downstream steps to create",
    )


def test_nested_decision_joined_from_two_decisions() -> None:
    problems = _problems(
        _template(
            _step("s"),
            _step("d1", type="decision", dependencies=["s"]),
            _step("d2", type="decision", dependencies=["s"]),
            _step("x", dependencies=["d1"]),
            _step("y", dependencies=["d2"]),
            _step("d3", type="decision", dependencies=["x", "y"]),
            _step("z", dependencies=["d3"]),
        )
    )
    assert problems == [
        "step 'd3': type: the step joins branches of decision steps 'd1' and 'd2', so it must "
        "be of type deferred_convergence (it cannot know which branches will run)",
    ]


def test_graph_checks_are_skipped_when_dependencies_are_broken() -> None:
    problems = _problems(
        _template(
            _step("d", type="decision", dependencies=["missing"]), _step("x", dependencies=["d"])
        )
    )
    assert problems == [
        "step 'd': dependencies: unknown dependency 'missing' (no step has that name)"
    ]


def test_deeply_nested_values_are_refused() -> None:
    value: Any = "leaf"
    for _ in range(MAX_DEPTH + 5):
        value = [value]
    problems = _problems(_template(_step(composition=value)))
    assert problems == [
        f"step 'a': composition{'[0]' * (MAX_DEPTH + 1)} is nested more than "
        f"{MAX_DEPTH} levels deep"
    ]


def test_recursive_yaml_aliases_are_refused() -> None:
    recursive: list[Any] = []
    recursive.append(recursive)
    problems = _problems(_template(_step(composition={"loop": recursive})))
    assert len(problems) == 1
    assert "nested more than" in problems[0]


def test_huge_alias_expansions_are_refused() -> None:
    layer: Any = ["x"] * 10
    for _ in range(6):  # 10**6 leaves when expanded, a handful of objects in memory
        layer = [layer] * 10
    problems = _problems(_template(_step(composition=layer)))
    assert problems == [
        "step 'a': composition[0][0][0][0][0][0] is too large (over 200000 values)"
    ] or (len(problems) == 1 and "is too large" in problems[0])
