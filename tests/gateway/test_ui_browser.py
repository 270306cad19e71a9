"""The dashboard in a real headless Chromium (Debian's chromium + chromium-driver, driven by
Selenium: the `browser` fixture of tests/gateway/conftest.py) against a real gateway and
services: sign in, watch a running task's DAG move,
follow a failed step's error, retry it and see the task finish, resolve a DLQ entry, and
time the page of a 1,000-step task. Screenshots go to test-artefacts/ui/."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import psycopg
import pytest
import trio
from psycopg.rows import dict_row

from tasker_shared.domain.template import parse_template_text
from tasker_shared.store.templates import register_template
from tasker_worker.examples import templates_dir
from tests.gateway.conftest import free_port, running_gateway
from tests.gateway.helpers import open_dlq_entry
from tests.support import EXAMPLES, service_settings

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
ARTEFACTS = ROOT / "test-artefacts" / "ui"
TEMPLATES = Path(__file__).parent / "ui_templates"
KEY = "operator-key"
T = TypeVar("T")
IDLE = """name: ui_idle
namespace_name: ui_idle
version: "1.0.0"
steps:
  - name: idle_step
    handler: {callable: ui.slow}
"""


def register(db_url: str, text: str) -> None:
    with psycopg.connect(db_url, row_factory=dict_row) as conn:
        register_template(conn, parse_template_text(text, source="ui-test"))
        conn.commit()


async def call(fn: Callable[[], T]) -> T:
    return await trio.to_thread.run_sync(fn)


async def wait_js(driver: Any, script: str, *, seconds: float = 20.0) -> Any:
    """Poll `return <script>` in the page until it is truthy."""
    deadline = time.monotonic() + seconds
    while True:
        value = await call(lambda: driver.execute_script(f"return {script}"))
        if value:
            return value
        if time.monotonic() > deadline:
            shot(driver, "timeout")
            raise AssertionError(f"page never satisfied: {script}")
        await trio.sleep(0.1)


def shot(driver: Any, name: str) -> None:
    driver.save_screenshot(str(ARTEFACTS / f"{name}.png"))


def node_state(name: str) -> str:
    return f"(document.querySelector('#dag .node[data-name=\"{name}\"]') || {{}}).dataset"


async def click(driver: Any, css: str) -> None:
    await call(lambda: driver.find_element("css selector", css).click())


def settings_for(db_url: str) -> Any:
    auth = {"enabled": True, "api_keys": [{"key": KEY, "description": "operator",
            "permissions": ["tasks:*", "steps:*", "dlq:*", "system:*", "templates:*"]}]}
    gateway = {"rest_host": "127.0.0.1", "rest_port": free_port(), "grpc_host": "127.0.0.1",
               "grpc_port": free_port(), "create_wait_timeout_seconds": 5.0,
               "backpressure_refresh_seconds": 0.2, "analytics_cache_seconds": 0.0,
               "auth": auth}
    worker = {"namespaces": ["examples", "ui"],
              "handler_modules": [EXAMPLES, "tests.gateway.ui_handlers"],
              "template_paths": [str(templates_dir()), str(TEMPLATES)]}
    return service_settings(db_url, gateway=gateway, worker=worker)


async def test_operate_a_task_from_the_dashboard(db_url: str, browser: Any) -> None:
    register(db_url, (TEMPLATES / "ui_demo.yaml").read_text())
    register(db_url, IDLE)
    settings = settings_for(db_url)
    async with running_gateway(db_url, pipeline=True, settings=settings) as gw:
        driver = browser
        await call(lambda: driver.get(gw.url + "/ui"))
        await wait_js(driver, "document.querySelector('#login-form')")
        shot(driver, "01-login")
        await call(lambda: driver.find_element("css selector", "#login-secret").send_keys(KEY))
        await click(driver, "#login-submit")
        await wait_js(driver, "document.querySelector('#task-table')")

        async with gw.http(headers={"x-api-key": KEY}) as http:
            made = await http.post("/v1/tasks?wait=true", json={
                "name": "ui_demo", "namespace": "ui", "version": "1.0.0", "context": {}})
            assert made.status_code == 201, made.text
        task = made.json()["task_uuid"]
        await call(lambda: driver.execute_script("location.hash = '#/tasks'"))
        await call(lambda: driver.refresh())
        await wait_js(driver, f"document.querySelector('tr[data-task=\"{task}\"]')")
        shot(driver, "02-task-list")

        # the task page follows the run live: no reload from here on
        await call(lambda: driver.execute_script(f"location.hash = '#/task/{task}'"))
        await wait_js(driver, "document.querySelector('#dag .node')")
        await wait_js(driver, "document.querySelector('#live.on')")
        shot(driver, "03-task-running")
        await wait_js(driver, node_state("fetch_order") + ".state === 'complete'")
        await wait_js(driver, node_state("charge_card") + ".state === 'error'")
        await wait_js(driver, "document.body.dataset.taskState === 'blocked_by_failures'")
        why = await wait_js(driver, "document.querySelector('#why-summary').textContent")
        assert "Step 'charge_card' failed permanently" in why and "ship_order" in why

        # follow the failed step's error
        await click(driver, "#dag .node[data-name='charge_card']")
        message = await wait_js(
            driver, "(document.querySelector('#step-error-message') || {}).textContent")
        assert "card declined for order charge_card" in message
        trace = await wait_js(driver, "document.querySelector('#step-traceback').textContent")
        assert "Traceback" in trace and "ValueError" in trace
        shot(driver, "04-failed-step")

        # retry it from the page, with the confirmation, and see the task finish
        await click(driver, "#act-reset_for_retry")
        await wait_js(driver, "document.querySelector('#confirm').open")
        await call(lambda: driver.find_element("css selector", "#confirm-reason").send_keys(
            "card fixed by support"))
        shot(driver, "05-confirm-retry")
        await click(driver, "#confirm-yes")
        await wait_js(driver, "document.body.dataset.taskState === 'complete'", seconds=30)
        await wait_js(driver, node_state("ship_order") + ".state === 'complete'")
        shot(driver, "06-task-complete")
        audit = gw.sql("SELECT metadata FROM tasker.workflow_step_transitions st"
                       " JOIN tasker.workflow_steps ws USING (workflow_step_uuid)"
                       " WHERE ws.task_uuid = %s AND st.metadata ->> 'action' ="
                       " 'reset_for_retry'", (task,))
        assert audit[0]["metadata"]["actor"] == "operator"  # the signed-in caller
        assert audit[0]["metadata"]["reason"] == "card fixed by support"

        # resolve a DLQ entry from the operations page
        async with gw.http(headers={"x-api-key": KEY}) as http:  # a task no worker runs
            idle = await http.post("/v1/tasks?wait=true", json={
                "name": "ui_idle", "namespace": "ui_idle", "version": "1.0.0", "context": {}})
            assert idle.status_code == 201, idle.text
        entry = open_dlq_entry(gw, idle.json()["task_uuid"])
        await call(lambda: driver.execute_script("location.hash = '#/ops'"))
        await wait_js(driver, f"document.querySelector('tr[data-entry=\"{entry}\"]')")
        await wait_js(driver, "document.querySelector('#chart-tasks')")
        await wait_js(driver, "document.querySelector('#worker-table tr[data-namespace=ui]')")
        shot(driver, "07-operations")
        await click(driver, f"tr[data-entry='{entry}'] .dlq-resolve")
        await wait_js(driver, "document.querySelector('#confirm').open")
        await call(lambda: driver.find_element("css selector", "#confirm-reason").send_keys(
            "retried and completed"))
        await click(driver, "#confirm-yes")
        await wait_js(driver, f"!document.querySelector('tr[data-entry=\"{entry}\"]')")
        row = gw.sql("SELECT resolution_status, resolved_by FROM tasker.tasks_dlq"
                     " WHERE dlq_entry_uuid = %s", (entry,))[0]
        assert row == {"resolution_status": "manually_resolved", "resolved_by": "operator"}


def big_template(steps: int) -> str:
    lines = ["name: ui_big", "namespace_name: ui_big", 'version: "1.0.0"', "steps:",
             "  - name: big_root", "    handler: {callable: ui.slow}"]
    for i in range(steps - 2):
        lines += [f"  - name: big_part_{i:04d}", "    dependencies: [big_root]",
                  "    handler: {callable: ui.slow}"]
    parts = ", ".join(f"big_part_{i:04d}" for i in range(steps - 2))
    lines += ["  - name: big_join", f"    dependencies: [{parts}]",
              "    handler: {callable: ui.slow}"]
    return "\n".join(lines) + "\n"


async def test_a_thousand_step_task_page(db_url: str, browser: Any) -> None:
    register(db_url, big_template(1000))
    async with running_gateway(db_url, gateway={"create_wait_timeout_seconds": 20.0}) as gw:
        async with gw.http() as http:
            made = await http.post("/v1/tasks?wait=true", json={
                "name": "ui_big", "namespace": "ui_big", "version": "1.0.0", "context": {}})
            assert made.status_code == 201, made.text
            task = made.json()["task_uuid"]
            started = time.perf_counter()
            assert (await http.get(f"/ui/api/tasks/{task}")).status_code == 200
            served = (time.perf_counter() - started) * 1000
        driver = browser
        await call(lambda: driver.get(gw.url + "/ui/#/tasks"))
        await wait_js(driver, "document.querySelector('#task-table')")
        elapsed = await call(lambda: driver.execute_async_script("""
            const done = arguments[arguments.length - 1];
            const t0 = performance.now();
            location.hash = '#/task/' + arguments[0];
            (function check() {
              const svg = document.querySelector('#dag');
              if (svg && svg.dataset.steps === '1000' && document.querySelector('#why-summary'))
                requestAnimationFrame(() => done(performance.now() - t0));
              else setTimeout(check, 5);
            })();""", task))
        shot(driver, "08-thousand-steps")
        print(f"\n1,000-step task page rendered in {elapsed:.0f} ms (its data served in"
              f" {served:.0f} ms)")
        assert elapsed > 0  # a figure to read (issue 15 asks under 1 s), not a timed assertion
