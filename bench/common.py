"""Shared benchmark plumbing: a fresh database, a process cluster, completion tracking."""

from __future__ import annotations

import json
import os
import statistics
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from tasker_cli.cluster import Cluster
from tasker_shared.db.connect import resolve_database_url, with_database
from tasker_shared.db.migrate import migrate


@contextmanager
def fresh_database() -> Iterator[str]:
    server = resolve_database_url(None)
    name = f"tasker_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(with_database(server, "postgres"), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = with_database(server, name)
    migrate(url)
    try:
        yield url
    finally:
        with psycopg.connect(with_database(server, "postgres"), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def cluster(url: str, *, namespace: str, handlers: str, templates: str,
            replicas: dict[str, int] | None = None, log_dir: Path | None = None,
            extra_env: dict[str, str] | None = None,
            service_env: dict[str, dict[str, str]] | None = None) -> Cluster:
    counts = {"ingestion": 1, "results": 1, "finalizer": 1, "worker": 1}
    counts.update(replicas or {})
    env = {
        "TASKER_SERVICE__LOG_LEVEL": "WARNING",
        "TASKER_WORKER__NAMESPACES": json.dumps([namespace]),
        "TASKER_WORKER__HANDLER_MODULES": json.dumps([handlers]),
        "TASKER_WORKER__TEMPLATE_PATHS": json.dumps([templates]),
        "TASKER_WORKER__MAX_CONCURRENT_HANDLERS": "100",
        "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
    }
    env.update(extra_env or {})
    return Cluster(database_url=url, replicas=counts, env=env, log_dir=log_dir,
                   service_env=service_env or {})


class CompletionTracker:
    """LISTENs for request outcomes and task completions; records when each happened."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.task_of: dict[str, str] = {}
        self.done_at: dict[str, float] = {}
        self.final_state: dict[str, str] = {}
        self._cond = threading.Condition()
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._ready = threading.Event()

    def __enter__(self) -> CompletionTracker:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop = True
        self._thread.join(5)

    def _run(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute("LISTEN tasker_task_request_outcomes")
            conn.execute("LISTEN tasker_task_events")
            self._ready.set()
            while not self._stop:
                for note in conn.notifies(timeout=0.2):
                    now = time.perf_counter()
                    data = json.loads(note.payload)
                    with self._cond:
                        if note.channel == "tasker_task_request_outcomes":
                            self.task_of[data["request_id"]] = str(data.get("task_uuid"))
                        elif data.get("to_state") in ("complete", "error", "blocked_by_failures",
                                                      "cancelled"):
                            self.done_at[str(data["task_uuid"])] = now
                            self.final_state[str(data["task_uuid"])] = data["to_state"]
                        self._cond.notify_all()

    def wait(self, request_ids: list[str], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                if all(self.task_of.get(r) in self.done_at for r in request_ids):
                    return True
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)


def send_requests(conn: psycopg.Connection[Any], name: str, contexts: list[dict[str, Any]],
                  *, namespace: str = "examples", version: str = "1.0.0") -> list[str]:
    """Send task requests in ONE transaction; returns their request ids.

    A single request is sent the way the gateway sends a request it waits on: one statement
    whose commit does not wait for the WAL flush, since ingestion's flushed commit makes it
    durable too. `conn` must be in autocommit mode."""
    ids = [str(uuid.uuid4()) for _ in contexts]
    params = [(Jsonb({"request_id": rid, "task_request": {
        "name": name, "namespace": namespace, "version": version, "context": ctx}}),)
        for rid, ctx in zip(ids, contexts, strict=True)]
    if len(params) == 1:
        conn.execute("SELECT set_config('synchronous_commit', 'off', true),"
                     " tasker.send_v1('orchestration_task_requests', %s)", params[0])
        return ids
    with conn.transaction(), conn.cursor() as cur:
        cur.executemany("SELECT tasker.send_v1('orchestration_task_requests', %s)", params)
    return ids


def percentile(values: list[float], pct: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1))))
    return ordered[k]


def summary_ms(values: list[float]) -> str:
    ms = [v * 1000 for v in values]
    return (f"p50 {percentile(ms, 50):6.1f}  p95 {percentile(ms, 95):6.1f}  "
            f"p99 {percentile(ms, 99):6.1f}  mean {statistics.fmean(ms):6.1f} ms")


def server_version(url: str) -> str:
    with psycopg.connect(url) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    return str(row[0]).split()[0] if row else "?"


def print_table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    """A Markdown table, so the figures can be pasted into the README as they are."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    def line(cells: tuple[str, ...]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"
    print(line(header))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print(line(row))


def quiet_env() -> None:
    os.environ.setdefault("TASKER_SERVICE__LOG_LEVEL", "WARNING")
