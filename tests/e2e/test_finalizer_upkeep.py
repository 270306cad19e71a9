"""The finalizer process runs table upkeep: with dead rows in a queue table, its maintenance
pass vacuums it whatever the server's autovacuum does, and /health/detailed reports it."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import psycopg
import pytest

from tasker_cli.cluster import health
from tests.e2e.cluster_support import TEMPLATES, cluster_env, make_cluster
from tests.support import submit

pytestmark = pytest.mark.e2e


def test_finalizer_process_keeps_queue_tables_vacuumed(db_url: str, tmp_path: Path) -> None:
    env = cluster_env(namespaces=["e2e"], handlers=["tests.e2e.pipeline_handlers"],
                      templates=[str(TEMPLATES / "pipeline")],
                      TASKER_SERVICE__LOG_LEVEL="WARNING",
                      TASKER_MAINTENANCE__QUEUE_INTERVAL_SECONDS="1",
                      TASKER_MAINTENANCE__QUEUE_DEAD_ROWS="50")
    with make_cluster(db_url, tmp_path / "logs", env=env) as cluster:
        for i in range(40):  # 40 linear-4 tasks leave a few hundred dead queue rows
            submit(db_url, "e2e_linear", {"n": i, "nonce": uuid.uuid4().hex}, namespace="e2e")
        port = cluster.get("finalizer").health_port
        deadline = time.monotonic() + 60
        vacuumed = None
        while time.monotonic() < deadline:
            body = health(port, "/health/detailed") or {}
            upkeep = (body.get("details") or {}).get("maintenance") or {}
            if upkeep.get("vacuums", 0) > 0 and upkeep.get("leader"):
                vacuumed = upkeep
                break
            time.sleep(0.5)
    assert vacuumed is not None, "the finalizer never vacuumed a queue table"
    assert any(name.startswith("pgmq.") for name in vacuumed["tables"]), vacuumed
    with psycopg.connect(db_url) as conn:
        row = conn.execute("SELECT max(last_vacuum) FROM pg_stat_user_tables"
                           " WHERE schemaname = 'pgmq'").fetchone()
    assert row is not None and row[0] is not None
