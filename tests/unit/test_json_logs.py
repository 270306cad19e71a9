"""Every line a service writes to stderr is one JSON object: structlog's own lines, the
standard library's (psycopg's pool warnings about an unreachable server, a logged
exception) and `warnings`, all through the same processors. Run in a fresh interpreter so
this process's logging set-up stays as pytest has it."""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = r"""
import logging, socket, warnings
import structlog
from psycopg_pool import ConnectionPool
from opentelemetry.sdk.trace import TracerProvider
from tasker_shared.runtime.logging import configure_logging

configure_logging(service="probe")
structlog.get_logger("tasker.probe").info("structlog_line", answer=42)
with socket.socket() as s:  # a port nobody listens on
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
pool = ConnectionPool(f"postgresql://nobody@127.0.0.1:{port}/none", min_size=1,
                      open=False, reconnect_timeout=0.3, timeout=0.2)
pool.open(wait=False)
try:
    pool.wait(timeout=0.6)
except Exception:
    pass
pool.close()
warnings.warn("an old way of doing it", DeprecationWarning)
try:
    {}["missing"]
except KeyError:
    logging.getLogger("grpclib.server").exception("Application error")
logging.getLogger("chatty").info("below the root level: not written")
with TracerProvider().get_tracer("probe").start_as_current_span("probe-span"):
    structlog.get_logger("tasker.probe").info("inside_a_span")
"""


def test_every_stderr_line_is_json() -> None:
    done = subprocess.run([sys.executable, "-W", "default", "-c", PROBE], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    records = []
    for line in lines:
        try:
            records.append(json.loads(line))
        except ValueError:
            raise AssertionError(f"not JSON: {line!r}\n--- all:\n{done.stderr}") from None
    by_logger = {}
    for record in records:
        assert record["service"] == "probe" and "timestamp" in record and "level" in record
        by_logger.setdefault(record.get("logger", "structlog"), []).append(record)
    assert by_logger["structlog"][0]["answer"] == 42
    pool_lines = by_logger["psycopg.pool"]
    assert pool_lines and all(r["level"] == "warning" for r in pool_lines), pool_lines
    (warned,) = by_logger["py.warnings"]
    assert "DeprecationWarning: an old way of doing it" in warned["event"]
    (failed,) = by_logger["grpclib.server"]
    assert failed["level"] == "error" and failed["exception"][0]["exc_type"] == "KeyError"
    assert "chatty" not in by_logger
    (spanned,) = [r for r in records if r["event"] == "inside_a_span"]
    assert len(spanned["trace_id"]) == 32 and len(spanned["span_id"]) == 16
