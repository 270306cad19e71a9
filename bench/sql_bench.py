"""SQL function benchmark at scale: readiness, execution context and discovery.

    python bench/sql_bench.py [--tasks 100000] [--calls 300] [--mix steady|backlog]
                              [--verbose] [--keep]

Creates a fresh database (on the server of TASKER_DATABASE_URL / DATABASE_URL, else an
embedded PostgreSQL), loads N tasks of mixed shapes (linear-4, diamond-4, tree-8) with
realistic state spread and transition histories using set-based SQL, ANALYZEs, then times
`get_step_readiness_status_v1` (one task), `get_task_execution_context_v1` (one task) and
`get_next_ready_tasks_v1(5)` (discovery) from the client, round trip included, and prints
median and p99 next to tasker-core's published figures (SPEC §11.1, measured at 5K tasks).
Discovery's cost follows the number of processable tasks (the backlog), hence `--mix`.
`--keep` leaves the database for EXPLAIN ANALYZE (useful with an external server only: an
embedded one stops with this process).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tasker_shared.db.connect import resolve_database_url, with_database  # noqa: E402
from tasker_shared.db.migrate import migrate  # noqa: E402
from tasker_shared.domain.template import dependency_levels  # noqa: E402
from tasker_shared.store.templates import register_template  # noqa: E402
from tasker_shared.templates_io import load_template_file  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures" / "templates"
SHAPES = ("linear_workflow", "diamond_workflow", "tree_workflow")

# tasker-core, SQL at 5K tasks (SPEC §11.1): (low, high) in milliseconds.
REFERENCE = {
    "readiness": (0.44, 0.60),
    "execution_context": (0.38, 0.46),
    "discovery": (1.75, 2.93),
}

# Share of tasks per category (cumulative thresholds on one random roll per task).
# `steady`: a system keeping up (ingestion moves new tasks on at once, so few are pending;
# waiting tasks are those with a step in retry backoff). `backlog`: ten times the waiting
# and pending tasks, as when discovery has fallen far behind.
MIXES = {
    "steady": (
        ("complete", 0.90),        # finished: every step complete
        ("in_process", 0.960),     # steps_in_process: a level running, later levels pending
        ("waiting_deps", 0.975),   # waiting_for_dependencies: a step waiting for its retry
        ("pending", 0.980),        # just created
        ("blocked", 0.995),        # blocked_by_failures: a step in error
        ("waiting_retry", 1.01),   # waiting_for_retry
    ),
    "backlog": (
        ("complete", 0.70),
        ("in_process", 0.75),
        ("waiting_deps", 0.90),
        ("pending", 0.95),
        ("blocked", 0.96),
        ("waiting_retry", 1.01),
    ),
}

STEP_PATHS = {
    "pending": ["pending"],
    "enqueued": ["pending", "enqueued"],
    "in_progress": ["pending", "enqueued", "in_progress"],
    "complete": ["pending", "enqueued", "in_progress", "enqueued_for_orchestration",
                 "complete"],
    "waiting_for_retry": ["pending", "enqueued", "in_progress",
                          "enqueued_as_error_for_orchestration", "waiting_for_retry"],
    "error": ["pending", "enqueued", "in_progress", "enqueued_as_error_for_orchestration",
              "error"],
}
_RUN = ["pending", "initializing", "enqueuing_steps", "steps_in_process"]
TASK_PATHS = {
    "complete": [*_RUN, "evaluating_results", "complete"],
    "in_process": _RUN,
    "waiting_deps": [*_RUN, "evaluating_results", "waiting_for_dependencies"],
    "pending": ["pending"],
    "blocked": [*_RUN, "evaluating_results", "blocked_by_failures"],
    "waiting_retry": [*_RUN, "evaluating_results", "waiting_for_retry"],
}


@contextmanager
def fresh_database(keep: bool) -> Iterator[str]:
    server = resolve_database_url(None)
    name = f"tasker_sqlbench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(with_database(server, "postgres"), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = with_database(server, name)
    try:
        yield url
    finally:
        if keep:
            print(f"kept database: {url}")
        else:
            with psycopg.connect(with_database(server, "postgres"), autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def shape_rows(url: str) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Register the three templates; rows (shape, named_task, step, idx, level, max_level)
    and edges (shape, parent, child)."""
    steps: list[tuple[Any, ...]] = []
    edges: list[tuple[Any, ...]] = []
    for shape, name in enumerate(SHAPES):
        template = load_template_file(FIXTURES / f"{name}.yaml")
        with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
            nt = register_template(conn, template)
        levels = dependency_levels(template)
        top = max(levels.values())
        for idx, step in enumerate(template.steps):
            steps.append((shape, str(nt), step.name, idx, levels[step.name], top))
            edges.extend((shape, dep, step.name) for dep in step.dependencies)
    return steps, edges


LOAD_SQL = [
    # One row per task: shape, category, the level it reached, when it was created.
    """
    CREATE TEMP TABLE bt AS
    SELECT g, tasker.uuid_generate_v7() AS task_uuid, g %% 3 AS shape, r, r2,
           CASE {categories} END AS cat
      FROM (SELECT g, random() AS r, random() AS r2 FROM generate_series(1, %(n)s) g) s
    """,
    """
    ALTER TABLE bt ADD COLUMN progress integer, ADD COLUMN created timestamptz,
                   ADD COLUMN named_task uuid
    """,
    """
    UPDATE bt SET named_task = s.nt,
           progress = floor(bt.r2 * (s.top + 1))::integer,
           created = CASE WHEN bt.cat = 'complete'
                          THEN now() - interval '10 minutes' - bt.r2 * interval '48 hours'
                          ELSE now() - interval '10 seconds' - bt.r2 * interval '25 minutes'
                     END
      FROM (SELECT DISTINCT shape, nt, top FROM shape_steps) s WHERE s.shape = bt.shape
    """,
    """
    INSERT INTO tasker.tasks (task_uuid, named_task_uuid, complete, requested_at, completed_at,
                              initiator, source_system, reason, tags, context, identity_hash,
                              priority, correlation_id, created_at, updated_at)
    SELECT task_uuid, named_task, cat = 'complete', created,
           CASE WHEN cat = 'complete' THEN created + interval '1 minute' END,
           'bench', 'sql_bench', 'load', '[]', jsonb_build_object('n', g), 'bench-' || g,
           (g %% 5) - 2, gen_random_uuid(), created, created
      FROM bt
    """,
    # One row per step, with the state its task's category and progress imply.
    """
    CREATE TEMP TABLE bs AS
    SELECT bt.g, bt.task_uuid, bt.created, bt.r2, ss.step_name, ss.idx, ss.named_step,
           tasker.uuid_generate_v7() AS step_uuid,
           CASE WHEN bt.cat = 'complete' THEN 'complete'
                WHEN bt.cat = 'pending' THEN 'pending'
                WHEN ss.level < bt.progress THEN 'complete'
                WHEN ss.level > bt.progress THEN 'pending'
                WHEN bt.cat = 'in_process'
                    THEN CASE WHEN ss.idx %% 2 = 0 THEN 'in_progress' ELSE 'enqueued' END
                WHEN bt.cat = 'blocked' THEN 'error'
                ELSE 'waiting_for_retry' END AS state
      FROM bt JOIN shape_steps ss ON ss.shape = bt.shape
    """,
    "CREATE INDEX ON bs (g, step_name)",
    """
    INSERT INTO tasker.workflow_steps (
        workflow_step_uuid, task_uuid, named_step_uuid, retryable, max_attempts, in_process,
        processed, processed_at, attempts, last_attempted_at, backoff_request_seconds, inputs,
        results, created_at, updated_at, current_state)
    SELECT step_uuid, task_uuid, named_step, true, 3, state = 'in_progress',
           state = 'complete', CASE WHEN state = 'complete' THEN created + interval '30 s' END,
           CASE state WHEN 'pending' THEN NULL WHEN 'enqueued' THEN NULL
                      WHEN 'error' THEN 3 ELSE 1 END,
           CASE WHEN state = 'waiting_for_retry'
                THEN CASE WHEN r2 < 0.5 THEN now() - interval '2 minutes' ELSE now() END
                WHEN state IN ('complete', 'in_progress', 'error')
                THEN created + interval '10 s' END,
           CASE WHEN state = 'waiting_for_retry' THEN 30 END,
           jsonb_build_object('operation', 'square'),
           CASE WHEN state = 'complete' THEN jsonb_build_object(
                    'success', true, 'status', 'completed',
                    'result', jsonb_build_object('value', idx),
                    'metadata', jsonb_build_object('execution_time_ms', 3))
                WHEN state IN ('error', 'waiting_for_retry') THEN jsonb_build_object(
                    'success', false, 'status', 'error',
                    'error', jsonb_build_object('message', 'boom'),
                    'metadata', jsonb_build_object('retryable', state <> 'error'))
           END,
           created, created, state
      FROM bs
    """,
    """
    INSERT INTO tasker.workflow_step_edges (from_step_uuid, to_step_uuid, name, created_at)
    SELECT p.step_uuid, c.step_uuid, 'provides', c.created
      FROM bs c
      JOIN bt ON bt.g = c.g
      JOIN shape_edges se ON se.shape = bt.shape AND se.child = c.step_name
      JOIN bs p ON p.g = c.g AND p.step_name = se.parent
    """,
    """
    INSERT INTO tasker.workflow_step_transitions (
        workflow_step_uuid, from_state, to_state, metadata, sort_key, created_at, updated_at)
    SELECT bs.step_uuid, sp.path[o - 1], sp.path[o],
           jsonb_build_object('event', sp.path[o]), o,
           bs.created + o * interval '2 s', bs.created + o * interval '2 s'
      FROM bs JOIN step_paths sp ON sp.state = bs.state,
           generate_subscripts(sp.path, 1) o
    """,
    """
    INSERT INTO tasker.task_transitions (task_uuid, from_state, to_state, metadata, sort_key,
                                         most_recent, created_at, updated_at)
    SELECT bt.task_uuid, tp.path[o - 1], tp.path[o], jsonb_build_object('event', tp.path[o]),
           o, o = cardinality(tp.path), bt.created + o * interval '1 s',
           bt.created + o * interval '1 s'
      FROM bt JOIN task_paths tp ON tp.cat = bt.cat, generate_subscripts(tp.path, 1) o
    """,
]


LOADED_TABLES = ("tasks", "workflow_steps", "workflow_step_edges", "workflow_step_transitions",
                 "task_transitions")


def drop_secondary_indexes(conn: psycopg.Connection[Any]) -> list[str]:
    """Drop the loaded tables' indexes that back no constraint; return their definitions."""
    rows = conn.execute(
        "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.schemaname = 'tasker'"
        " AND i.tablename = ANY (%s) AND NOT EXISTS (SELECT 1 FROM pg_constraint c"
        " WHERE c.conname = i.indexname AND c.connamespace = 'tasker'::regnamespace)",
        (list(LOADED_TABLES),)).fetchall()
    for name, _ in rows:
        conn.execute(f'DROP INDEX tasker."{name}"')
    return [definition for _, definition in rows]


def load(url: str, n: int, *, mix: str = "steady", verbose: bool = False) -> dict[str, int]:
    categories = " ".join(f"WHEN r < {limit} THEN '{name}'" for name, limit in MIXES[mix])
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT setseed(0.4242)")
        steps, edges = shape_rows(url)
        with conn.transaction():
            conn.execute("INSERT INTO tasker.named_steps (name) SELECT unnest(%s::text[])"
                         " ON CONFLICT (name) DO NOTHING", ([s[2] for s in steps],))
            conn.execute("CREATE TEMP TABLE shape_steps AS SELECT s.shape, s.nt, s.step_name,"
                         " s.idx, s.level, s.top, ns.named_step_uuid AS named_step"
                         " FROM jsonb_to_recordset(%s) AS s(shape int, nt uuid, step_name text,"
                         " idx int, level int, top int)"
                         " JOIN tasker.named_steps ns ON ns.name = s.step_name",
                         (Jsonb([dict(zip(("shape", "nt", "step_name", "idx", "level", "top"),
                                          s, strict=True)) for s in steps]),))
            conn.execute("CREATE TEMP TABLE shape_edges AS SELECT * FROM jsonb_to_recordset(%s)"
                         " AS e(shape int, parent text, child text)",
                         (Jsonb([{"shape": e[0], "parent": e[1], "child": e[2]}
                                 for e in edges]),))
            conn.execute("CREATE TEMP TABLE step_paths AS SELECT key AS state,"
                         " ARRAY(SELECT jsonb_array_elements_text(value)) AS path"
                         " FROM jsonb_each(%s)", (Jsonb(STEP_PATHS),))
            conn.execute("CREATE TEMP TABLE task_paths AS SELECT key AS cat,"
                         " ARRAY(SELECT jsonb_array_elements_text(value)) AS path"
                         " FROM jsonb_each(%s)", (Jsonb(TASK_PATHS),))
            # Bulk load of consistent rows: skip per-row triggers (foreign key checks, the
            # result audit trigger) for the transaction.
            conn.execute("SET LOCAL session_replication_role = replica")
            # Building an index once is much cheaper than maintaining it row by row.
            indexes = drop_secondary_indexes(conn)
            for statement in LOAD_SQL:
                started = time.monotonic()
                conn.execute(statement.replace("{categories}", categories),
                             {"n": n})
                if verbose:
                    text = " ".join(statement.split())[:70]
                    print(f"  {time.monotonic() - started:6.2f}s  {text}")
            started = time.monotonic()
            for definition in indexes:
                conn.execute(definition)
            if verbose:
                print(f"  {time.monotonic() - started:6.2f}s  recreate {len(indexes)} indexes")
        for table in (*LOADED_TABLES, "named_steps"):
            conn.execute(f"VACUUM ANALYZE tasker.{table}")
        counts = {}
        for table in LOADED_TABLES:
            row = conn.execute(f"SELECT count(*) FROM tasker.{table}").fetchone()
            counts[table] = int(row[0]) if row else 0
        by_state = conn.execute(
            "SELECT to_state, count(*) FROM tasker.task_transitions WHERE most_recent"
            " GROUP BY 1 ORDER BY 2 DESC").fetchall()
        counts.update({f"state:{s}": int(c) for s, c in by_state})
    return counts


def timed(fn: Callable[[], object], calls: int, warmup: int = 20) -> list[float]:
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(calls):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def measure(url: str, calls: int) -> dict[str, list[float]]:
    with psycopg.connect(url, autocommit=True, prepare_threshold=0) as conn:
        tasks = [r[0] for r in conn.execute(
            "SELECT task_uuid FROM tasker.tasks ORDER BY random() LIMIT %s", (calls + 20,))]
        discovery = "SELECT * FROM tasker.get_next_ready_tasks_v1(5)"
        found = conn.execute(discovery).fetchall()
        if len(found) != 5:
            raise SystemExit(f"discovery found {len(found)} tasks, expected 5")

        def per_task(query: str) -> Callable[[], object]:
            it = iter(tasks * 2)
            return lambda: conn.execute(query, (next(it),)).fetchall()

        return {
            "readiness": timed(
                per_task("SELECT * FROM tasker.get_step_readiness_status_v1(%s)"), calls),
            "execution_context": timed(
                per_task("SELECT * FROM tasker.get_task_execution_context_v1(%s)"), calls),
            "discovery": timed(lambda: conn.execute(discovery).fetchall(), calls),
        }


def report(n: int, mix: str, counts: dict[str, int], load_seconds: float,
           results: dict[str, list[float]]) -> None:
    print(f"\nloaded {n:,} tasks ({mix} mix) in {load_seconds:.1f}s:",
          ", ".join(f"{k} {v:,}" for k, v in counts.items() if not k.startswith("state:")))
    print("task states:", ", ".join(f"{k[6:]} {v:,}" for k, v in counts.items()
                                    if k.startswith("state:")))
    print(f"\n{'function':<34}{'median ms':>10}{'p99 ms':>10}   tasker-core @5K tasks")
    names = {"readiness": "get_step_readiness_status_v1",
             "execution_context": "get_task_execution_context_v1",
             "discovery": "get_next_ready_tasks_v1(5)"}
    for key, samples in results.items():
        low, high = REFERENCE[key]
        print(f"{names[key]:<34}{statistics.median(samples):>10.3f}"
              f"{percentile(samples, 99):>10.3f}   {low:.2f}-{high:.2f} ms")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument("--mix", choices=sorted(MIXES), default="steady",
                        help="share of tasks per state (default: steady)")
    parser.add_argument("--verbose", action="store_true", help="time each load statement")
    args = parser.parse_args(argv)
    with fresh_database(args.keep) as url:
        migrate(url)
        started = time.monotonic()
        counts = load(url, args.tasks, mix=args.mix, verbose=args.verbose)
        load_seconds = time.monotonic() - started
        results = measure(url, args.calls)
        report(args.tasks, args.mix, counts, load_seconds, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
