"""Swagger UI at /api-docs/ui in a real headless Chromium that can resolve no host but
127.0.0.1: the page renders the gateway's OpenAPI 3.1 document from the files shipped in
the package, lists the operations, and asks the network for nothing else."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import trio

from tests.gateway.conftest import Gateway

pytestmark = pytest.mark.slow

ARTEFACTS = Path(__file__).resolve().parents[2] / "test-artefacts" / "ui"
OPERATIONS = "Array.from(document.querySelectorAll('.opblock'))"


async def _poll(driver: Any, script: str, seconds: float = 30.0) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        value = await trio.to_thread.run_sync(driver.execute_script, f"return {script}")
        if value or time.monotonic() > deadline:
            return value
        await trio.sleep(0.2)


async def test_swagger_ui_lists_the_operations_offline(gw: Gateway, browser: Any) -> None:
    async with gw.http() as http:
        document = (await http.get("/api-docs/openapi.json")).json()
        page = await http.get("/api-docs/ui")
        assert "http://" not in page.text and "https://" not in page.text
        assert "script-src 'self'" in page.headers["content-security-policy"]
        missing = await http.get("/api-docs/swagger/nothing.js")
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    assert document["openapi"].startswith("3.1")
    expected = {(method.upper(), path) for path, item in document["paths"].items()
                for method in item}
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    await trio.to_thread.run_sync(browser.get, gw.url + "/api-docs/ui")
    count = await _poll(browser, f"{OPERATIONS}.length >= {len(expected)} && "
                                 f"{OPERATIONS}.length")
    shown = await trio.to_thread.run_sync(browser.execute_script, f"""return {OPERATIONS}.map(
        b => [b.querySelector('.opblock-summary-method').textContent.trim(),
              b.querySelector('.opblock-summary-path').dataset.path])""")
    assert count == len(expected), await trio.to_thread.run_sync(
        browser.execute_script, "return document.body.innerText.slice(0, 2000)")
    assert {(method, path) for method, path in shown} == expected
    version = await trio.to_thread.run_sync(
        browser.execute_script, "return document.querySelector('.info .version')"
                                ".textContent")
    assert version.strip()
    title = await trio.to_thread.run_sync(
        browser.execute_script, "return document.querySelector('.info .title').textContent")
    assert "OAS 3.1" in title
    await trio.to_thread.run_sync(browser.save_screenshot,
                                  str(ARTEFACTS / "swagger-ui.png"))
    errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert not errors, errors
