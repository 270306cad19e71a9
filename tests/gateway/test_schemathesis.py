"""Schemathesis against the served OpenAPI document: no 5xx, no schema violations (status
codes, content types, headers and bodies all as documented)."""

from __future__ import annotations

import sys
from pathlib import Path

import trio

from tests.gateway.conftest import running_gateway

CHECKS = ",".join(["not_a_server_error", "status_code_conformance", "content_type_conformance",
                   "response_headers_conformance", "response_schema_conformance"])


async def test_schemathesis_finds_nothing(db_url: str, tmp_path: Path) -> None:
    st = Path(sys.executable).with_name("st")
    async with running_gateway(db_url, gateway={"config_endpoint_enabled": True,
                                                "create_wait_timeout_seconds": 2.0}) as gw:
        done = await trio.run_process(
            [str(st), "run", f"{gw.url}/api-docs/openapi.json", "--checks", CHECKS,
             "--phases", "examples,coverage,fuzzing,stateful", "--max-examples", "10",
             "--seed", "20240601", "--generation-database", "none", "--no-color",
             "--request-timeout", "10", "--report", "junit", "--report-dir", str(tmp_path),
             # A task's event stream lasts until the task ends (never, without a worker):
             # its events are checked against the document by tests/gateway/test_task_stream.
             "--exclude-operation-id", "stream_task_status"],
            capture_stdout=True, capture_stderr=True, check=False)
    output = done.stdout.decode() + done.stderr.decode()
    assert done.returncode == 0, output[-6000:]
    assert " passed" in output and "errored" not in output
