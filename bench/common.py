"""Shared benchmark plumbing: a fresh database, a process cluster, completion times from the
database, queue submits, percentiles and Markdown tables."""

from __future__ import annotations

import json
import os
import statistics
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from tasker_cli.cluster import Cluster
from tasker_shared.db.connect import resolve_database_url, with_database
from tasker_shared.db.migrate import migrate


@contextmanager
def fresh_database(*, tasker_schema: bool = True, prefix: str = "tasker_bench") -> Iterator[str]:
    """A new database on TASKER_DATABASE_URL's server (else the embedded one), with Tasker's
    schema unless `tasker_schema` is False (a peer system's own database); dropped at the end."""
    server = resolve_database_url(None)
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(with_database(server, "postgres"), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = with_database(server, name)
    if tasker_schema:
        migrate(url)
    try:
        yield url
    finally:
        with psycopg.connect(with_database(server, "postgres"), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def cluster(url: str, *, namespace: str, handlers: str, templates: str | list[str],
            replicas: dict[str, int] | None = None, log_dir: Path | None = None,
            extra_env: dict[str, str] | None = None,
            service_env: dict[str, dict[str, str]] | None = None) -> Cluster:
    counts = {"ingestion": 1, "results": 1, "finalizer": 1, "worker": 1}
    counts.update(replicas or {})
    env = {
        "TASKER_SERVICE__LOG_LEVEL": "WARNING",
        "TASKER_WORKER__NAMESPACES": json.dumps([namespace]),
        "TASKER_WORKER__HANDLER_MODULES": json.dumps([handlers]),
        "TASKER_WORKER__TEMPLATE_PATHS": json.dumps(
            [templates] if isinstance(templates, str) else templates),
        "TASKER_WORKER__MAX_CONCURRENT_HANDLERS": "100",
        "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
    }
    env.update(extra_env or {})
    return Cluster(database_url=url, replicas=counts, env=env, log_dir=log_dir,
                   service_env=service_env or {})


TERMINAL_STATES = ("complete", "error", "blocked_by_failures", "cancelled")

# Each request's task and the first terminal transition of that task, as the database
# recorded them (the transition's created_at: the finishing transaction's start).
_FINISHED = """
SELECT o.request_id, o.outcome, o.task_uuid::text, o.reason, f.to_state,
       extract(epoch FROM f.created_at)::float8 AS done_at
  FROM tasker.task_request_outcomes o
  LEFT JOIN LATERAL (SELECT tt.to_state, tt.created_at FROM tasker.task_transitions tt
                      WHERE tt.task_uuid = o.task_uuid AND tt.to_state = ANY (%s)
                      ORDER BY tt.sort_key LIMIT 1) f ON true
 WHERE o.request_id = ANY (%s)"""


class Completions:
    """When each request's task finished, read from the database: the request outcome, then
    the task's first terminal transition (`done_at`: its created_at, epoch seconds, so compare
    it with `time.time()` taken before the submit call). LISTENs on task events only to know
    when to look again (and looks every 0.25 s whatever it hears)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.task_of: dict[str, str] = {}
        self.done_at: dict[str, float] = {}
        self.final_state: dict[str, str] = {}
        self._listen: psycopg.Connection[Any] | None = None
        self._query: psycopg.Connection[Any] | None = None

    def __enter__(self) -> Completions:
        self._listen = psycopg.connect(self.url, autocommit=True)
        self._listen.execute("LISTEN tasker_task_events")
        self._query = psycopg.connect(self.url, autocommit=True)
        return self

    def __exit__(self, *exc: object) -> None:
        for conn in (self._listen, self._query):
            if conn is not None:
                conn.close()

    def _look(self, request_ids: list[str]) -> list[str]:
        """Record what finished; returns the request ids still unfinished."""
        assert self._query is not None, "use Completions as a context manager"
        rows = self._query.execute(_FINISHED, (list(TERMINAL_STATES), request_ids)).fetchall()
        for rid, outcome, task, reason, state, done in rows:
            if outcome != "created":
                raise RuntimeError(f"request {rid} was not created: {outcome} ({reason})")
            self.task_of[rid] = task
            if state is not None:
                self.done_at[task] = done
                self.final_state[task] = state
        return [r for r in request_ids if self.task_of.get(r) not in self.done_at]

    def wait(self, request_ids: list[str], timeout: float) -> bool:
        """Block until every request's task finished (True) or `timeout` passed (False)."""
        assert self._listen is not None, "use Completions as a context manager"
        deadline = time.monotonic() + timeout
        pending = list(request_ids)
        while True:
            pending = self._look(pending)
            left = deadline - time.monotonic()
            if not pending or left <= 0:
                return not pending
            for _ in self._listen.notifies(timeout=min(0.25, left), stop_after=1):
                pass
            time.sleep(0.005)  # let a burst of events gather before looking again

    def latencies(self, submitted: dict[str, float]) -> list[float]:
        """Seconds from each request's submit time (epoch) to its task's completion."""
        return [self.done_at[self.task_of[rid]] - t0 for rid, t0 in submitted.items()]


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


def print_table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> None:
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
