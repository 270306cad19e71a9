"""Handler results past the bounds, through the real worker runtime and database: the step
fails at once (non-retryable) with an error naming the limit; nothing oversized is stored
and the worker carries on."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import trio

from tasker_shared.domain.limits import DEFAULT_MAX_DEPTH
from tests.integration.worker_support import services_with_worker
from tests.support import outcome, steps_of, submit, wait_task

NS = "bounds"
MAX_RESULT_BYTES = 4096


def _template(name: str, handler: str) -> str:
    return "\n".join([
        f"name: {name}", f"namespace_name: {NS}", 'version: "1.0.0"', "steps:",
        f"  - {{name: {name}_step, handler: {{callable: {handler}}}, retry: {{max_attempts: 3}}}}",
        ""])


@pytest.fixture
async def services(db_url: str, tmp_path: Path) -> AsyncIterator[str]:
    for name, handler in (("bounds_nested", "wrt.nested"), ("bounds_large", "wrt.large")):
        (tmp_path / f"{name}.yaml").write_text(_template(name, handler))
    async with services_with_worker(db_url, tmp_path, [NS],
                                    worker={"max_result_bytes": MAX_RESULT_BYTES}) as url:
        yield url


async def _run(url: str, name: str, context: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    rid = submit(url, name, context, namespace=NS)
    task = (await trio.to_thread.run_sync(outcome, url, rid))["task_uuid"]
    state = await trio.to_thread.run_sync(lambda: wait_task(url, task, timeout=20))
    return state, steps_of(url, task)[f"{name}_step"]


async def test_results_past_the_bounds_fail_the_step_naming_the_limit(services: str) -> None:
    url = services
    for name, context, limit in (
            ("bounds_nested", {"depth": 5_000}, f"nests deeper than {DEFAULT_MAX_DEPTH} levels"),
            ("bounds_large", {"bytes": 2 * MAX_RESULT_BYTES},
             f"at most {MAX_RESULT_BYTES} are allowed")):
        state, step = await _run(url, name, context)
        assert state == "blocked_by_failures"  # a permanent failure, as for any handler
        assert (step["current_state"], step["attempts"]) == ("error", 1)  # not retried
        error = step["results"]["error"]
        assert limit in error["message"] and error["retryable"] is False
        assert step["results"]["result"] == {}
    # The worker is fine: results within the bounds go through.
    state, step = await _run(url, "bounds_nested", {"depth": DEFAULT_MAX_DEPTH - 2})
    assert state == "complete" and step["attempts"] == 1
