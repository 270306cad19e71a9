"""Every invalid template fixture fails with exactly its own messages (file, step, field)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tasker_shared.errors import TemplateError
from tasker_shared.templates_io import load_template_file

INVALID = Path(__file__).resolve().parent.parent / "fixtures" / "templates" / "invalid"

# file name -> the exact problem lines expected (after the "<path>: " prefix)
EXPECTED: dict[str, list[str]] = {
    "unknown_dependency.yaml": [
        "step 'store': dependencies: unknown dependency 'trnsform' (no step has that name)",
    ],
    "dependency_cycle.yaml": [
        "step 'a': dependencies form a cycle: a -> c -> b -> a (each step depends on the next)",
    ],
    "self_dependency.yaml": [
        "step 'loop': dependencies lists the step itself ('loop'): self-dependency is not allowed",
    ],
    "duplicate_step_name.yaml": [
        "step 'fetch': name: duplicate step name 'fetch' (steps[0] and steps[2])",
    ],
    "namespace_too_long.yaml": [
        "namespace_name must be at most 29 characters (queue names are derived from it), "
        "got 41 in 'this_namespace_is_far_too_long_for_queues'",
    ],
    "namespace_bad_characters.yaml": [
        "namespace_name may only contain letters, digits and underscores [A-Za-z0-9_], "
        "got 'my-namespace'",
    ],
    "name_too_long.yaml": ["name must be 1 to 255 characters long, got 256"],
    "version_too_long.yaml": ["version must be 1 to 50 characters long, got 56"],
    "version_not_a_string.yaml": [
        'version must be a string, got 1.0 (quote it in YAML: version: "1.0.0")',
    ],
    "wrong_field_types.yaml": [
        "step 'fetch': handler.initialization must be a mapping, got ['not', 'a', 'mapping']",
        "step 'fetch': dependencies must be a list of strings, got 'fetch_all'",
        "step 'fetch': retry.retryable must be true or false, got 'yes'",
        "step 'fetch': retry.max_attempts must be an integer between 0 and 100, got 'x'",
        "step 'fetch': retry.backoff must be one of none, linear, exponential, fibonacci, "
        "got 'quadratic'",
        "step 'fetch': timeout_seconds must be an integer between 1 and 4294967295, got -5",
    ],
    "no_steps.yaml": ["steps must list at least one step"],
    "missing_handler.yaml": [
        "step 'fetch': handler is required (a mapping with at least 'callable')",
    ],
    "unknown_step_type.yaml": [
        "step 'fetch': step_type must be one of standard, decision, deferred_convergence, "
        "batchable, batch_worker, got 'parallel'",
    ],
    "batch_worker_without_batch_config.yaml": [
        "step 'worker': batch_config is required on a step of type batch_worker",
    ],
    "worker_template_not_batch_worker.yaml": [
        "step 'worker': batch_config.worker_template 'analyze' does not name a step of type "
        "batch_worker",
    ],
    "batch_config_missing_worker_template.yaml": [
        "step 'worker': batch_config.worker_template is required",
        "step 'worker': batch_config.batch_size must be an integer between 1 and 100000, got 0",
        "step 'worker': batch_config.parallelism must be an integer between 1 and 1000, got 5000",
        "step 'worker': batch_config.failure_strategy must be one of continue_on_failure, "
        "fail_fast, isolate, got 'give_up'",
    ],
    "decision_without_dependencies.yaml": [
        "step 'route': dependencies: a decision step must have at least one dependency",
    ],
    "decision_branches_joined.yaml": [
        "step 'combine': type: the step joins branches of decision steps 'pick_colour' and "
        "'pick_size', so it must be of type deferred_convergence (it cannot know which "
        "branches will run)",
    ],
    "deferred_never_created.yaml": [
        "step 'summarize': type: this deferred_convergence step would never be created: none "
        "of its dependencies is created by a decision step or is a batch_worker template",
    ],
    "invalid_input_schema.yaml": [
        "input_schema is not a valid JSON Schema: 'objekt' is not valid under any of the "
        "given schemas (at $.type)",
    ],
    "environment_unknown_step.yaml": [
        "environments.test.steps[0] (step 'olny'): name 'olny' does not name a step of this "
        "template (or ALL)",
        "environments.test.steps[1] (step 'ALL'): retry.max_attempts must be an integer "
        "between 0 and 100, got -1",
    ],
    "lifecycle_invalid.yaml": [
        "lifecycle.max_duration_minutes must be an integer between 1 and 43200, got 0",
        "lifecycle.staleness_action must be one of dlq, error, none, got 'explode'",
        "lifecycle.auto_fail_on_timeout must be true or false, got 'sometimes'",
    ],
    "yaml_syntax_error.yaml": [
        "line 7, column 9: YAML syntax error: while parsing a flow mapping: did not find "
        "expected ',' or '}'",
    ],
    "duplicate_yaml_key.yaml": [
        "line 8, column 5: duplicate key 'retry' (the later value would silently win)",
    ],
}


def test_every_invalid_fixture_has_an_expectation() -> None:
    assert sorted(p.name for p in INVALID.glob("*.yaml")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_invalid_fixture_message(name: str) -> None:
    path = INVALID / name
    with pytest.raises(TemplateError) as info:
        load_template_file(path)
    assert info.value.problems == [f"{path}: {line}" for line in EXPECTED[name]]
