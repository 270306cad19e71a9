"""`tasker task create --watch` / `task watch` / `task request` against the real gateway and
pipeline: step changes with names, failures with their error and next retry, final results,
an exit status per outcome, NDJSON with REST's enum spellings, the latest template version."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psycopg
import pytest
import trio
from psycopg.rows import dict_row

from tasker_shared.store.templates import register_template
from tasker_shared.templates_io import load_templates
from tests.client.conftest import Stack, StackFactory
from tests.client.test_cli import tasker, tasker_json

pytestmark = pytest.mark.usefixtures("wide_terminal")

FAILING = """
name: always_failing
namespace_name: examples
version: "{version}"
steps:
  - name: fetch
    handler: {{callable: examples.square}}
  - name: call
    dependencies: [fetch]
    retry: {{retryable: true, max_attempts: 2}}
    handler:
      callable: examples.flaky
      initialization: {{parent: fetch, succeed_on_attempt: 99}}
"""

# No input schema: without `even_number` the square handler raises TypeError (not retryable).
BROKEN = """
name: broken_input
namespace_name: examples
version: "1.0.0"
steps:
  - name: square
    retry: {retryable: false, max_attempts: 1}
    handler: {callable: examples.square}
  - name: after
    dependencies: [square]
    handler: {callable: examples.square}
"""


def register_yaml(url: str, folder: Path, text: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "template.yaml").write_text(text)
    with psycopg.connect(url, row_factory=dict_row) as conn:
        for template in load_templates([folder]):
            register_template(conn, template)


def ndjson(out: str) -> list[dict[str, Any]]:
    """Every line of `out` is one JSON object (NDJSON, the first line included)."""
    lines = out.splitlines()
    assert lines
    parsed = [json.loads(line) for line in lines]
    assert all(isinstance(item, dict) for item in parsed)
    return parsed


async def test_create_watch_json_is_ndjson_with_steps_and_results(stack: Stack) -> None:
    # no --version: the latest registered one (1.0.0), not the server default 0.1.0
    code, out, err = await tasker("task", "create", "linear_workflow", "--namespace",
                                  "examples", "--context", '{"even_number": 2}', "--watch",
                                  "--steps", "--json", "--address", stack.address)
    assert code == 0, err
    events = ndjson(out)
    assert events[0]["event"] == "created"
    assert events[0]["status"] == "created"
    assert events[0]["task"]["version"] == "1.0.0"
    assert events[0]["task"]["status"] in ("pending", "initializing", "steps_in_process",
                                           "enqueuing_steps")
    updates = [e for e in events if e["event"] == "update"]
    step_names = {e["step_name"] for e in updates if e["step_name"]}
    assert step_names == {f"linear_step_{i}" for i in range(1, 5)}
    assert {e["update_type"] for e in updates} <= {"task_state_change", "step_state_change"}
    assert any(e["step_state"] == "complete" and e["previous_step_state"] for e in updates)
    outcome = events[-1]
    assert outcome["event"] == "outcome"
    assert outcome["status"] == "complete"
    assert outcome["exit_code"] == 0
    results = {row["name"]: row["result"] for row in outcome["steps"]}
    assert results["linear_step_4"]["value"] == 2 ** 16  # an integer, not 65536.0
    assert all(row["state"] == "complete" for row in outcome["steps"])


async def test_watch_shows_retries_then_completes(start_stack: StackFactory) -> None:
    backoff = {"base_seconds": 1.0, "max_seconds": 2.0, "jitter_enabled": False}
    async with start_stack(backoff=backoff) as running:
        code, out, err = await tasker("task", "create", "flaky_workflow", "--namespace",
                                      "examples", "--context", '{"even_number": 3}',
                                      "--watch", "--address", running.address)
    assert code == 0, err
    assert "step  flaky_call: in_progress -> " in out
    assert "flaky_call failed (attempt 1/3): retryable_error: transient failure on attempt 1" \
        in out
    assert "; next retry at " in out
    assert "flaky_report" in out  # the results table
    assert '"attempts_needed":3' in out
    assert out.rstrip().splitlines()[-1].endswith("is complete")


async def test_exhausted_retries_end_the_watch_in_error(stack: Stack, tmp_path: Path) -> None:
    await trio.to_thread.run_sync(register_yaml, stack.url, tmp_path / "t",
                                  FAILING.format(version="1.0.0"))
    with trio.fail_after(60):
        code, out, err = await tasker("task", "create", "always_failing", "--namespace",
                                      "examples", "--context", '{"even_number": 2}',
                                      "--watch", "--address", stack.address)
    assert code == 3, err
    assert "call failed (attempt 1/2): retryable_error: transient failure on attempt 1; " \
        "next retry at " in out
    assert "call failed (attempt 2/2): retryable_error: transient failure on attempt 2; " \
        "no attempt left" in out
    assert out.rstrip().splitlines()[-1].endswith("is error")


async def test_permanent_failure_ends_the_watch_blocked(stack: Stack, tmp_path: Path) -> None:
    await trio.to_thread.run_sync(register_yaml, stack.url, tmp_path / "t", BROKEN)
    addr = ["--address", stack.address]
    with trio.fail_after(60):  # before: the watch never ended
        code, out, err = await tasker("task", "create", "broken_input", "--namespace",
                                      "examples", "--context", "{}", "--watch", *addr)
    assert code == 5, err  # blocked by failures: an operator must act
    assert ("square failed (attempt 1/1): TypeError: int() argument must be a string, a "
            "bytes-like object or a real number, not 'NoneType'; no attempt left") in out
    last = out.rstrip().splitlines()[-1]
    assert "is blocked by failures (square failed for good)" in last
    assert "tasker step resolve" in last

    task_uuid = last.split()[1]
    code, out, _ = await tasker("task", "watch", task_uuid, "--json", *addr)
    assert code == 5
    outcome = ndjson(out)[-1]
    assert outcome["status"] == "blocked_by_failures"
    assert outcome["exit_code"] == 5
    failed = next(row for row in outcome["steps"] if row["name"] == "square")
    assert failed["state"] == "error"
    assert failed["error"].startswith("int() argument must be")
    assert next(row for row in outcome["steps"] if row["name"] == "after")["state"] == "pending"


async def test_cancelled_task_exit_status(idle_stack: Stack) -> None:
    addr = ["--address", idle_stack.address]
    created = await tasker_json("task", "create", "linear_workflow", "--namespace", "examples",
                                "--context", '{"even_number": 2}', *addr)
    await tasker("task", "cancel", created["task_uuid"], *addr)
    code, out, _ = await tasker("task", "watch", created["task_uuid"], *addr)
    assert code == 4
    assert out.rstrip().endswith("is cancelled")


async def test_latest_version_and_unknown_name(idle_stack: Stack, tmp_path: Path) -> None:
    for version in ("1.9.0", "1.10.0", "2.0.0-rc.1"):
        await trio.to_thread.run_sync(register_yaml, idle_stack.url, tmp_path / version,
                                      FAILING.format(version=version))
    addr = ["--address", idle_stack.address]
    created = await tasker_json("task", "create", "always_failing", "--namespace",
                                "examples", "--context", '{"even_number": 2}', *addr)
    assert created["task"]["version"] == "1.10.0"  # releases before pre-releases, 10 > 9

    code, _, err = await tasker("task", "create", "linear_workflow", *addr)
    assert code == 1
    assert err.startswith("error: not_found: no template 'linear_workflow' is registered in "
                          "namespace 'default'; it is in examples: pass --namespace")


async def test_no_wait_request_can_be_followed(stack: Stack) -> None:
    addr = ["--address", stack.address, "--rest-url",
            f"http://127.0.0.1:{stack.settings.gateway.rest_port}"]
    code, out, err = await tasker("task", "create", "linear_workflow", "--namespace",
                                  "examples", "--context", '{"even_number": 2}', "--no-wait",
                                  *addr[:2])
    assert code == 0, err
    request_id = out.split("accepted request ")[1].split()[0]
    assert f"tasker task watch --request {request_id}" in out

    code, out, err = await tasker("task", "watch", "--request", request_id, "--json", *addr)
    assert code == 0, err
    events = ndjson(out)
    assert events[0]["event"] == "request"
    assert events[0]["outcome"] == "created"
    assert events[-1]["status"] == "complete"

    shown = await tasker_json("task", "request", request_id, *addr)
    assert shown["task_uuid"] == events[0]["task_uuid"]
    code, out, _ = await tasker("task", "request", request_id, *addr)
    assert code == 0
    assert f"request {request_id}: created task {shown['task_uuid']}" in out
    code, _, err = await tasker("task", "request", "no-such-request", *addr)
    assert code == 1
    assert err.startswith("error: not_found: no outcome recorded for task request")
