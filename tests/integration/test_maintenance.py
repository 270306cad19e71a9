"""Table upkeep and retention (issue 18): the maintenance pass vacuums queue tables with dead
rows, one replica leads, retention deletes old finished tasks with every row they own (and
keeps the rest), `tasker db prune`, and hot-path plans that survive fresh statistics."""

from __future__ import annotations

import re
import time
from datetime import timedelta
from typing import Any
from uuid import UUID

import psycopg
import pytest
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from tasker_cli.main import main
from tasker_shared.db.database import open_database
from tasker_shared.db.maintenance import Maintainer, release_lead
from tasker_shared.db.retention import prune_history
from tasker_shared.runtime.settings import MaintenanceSettings
from tests.integration.dag_support import (
    DictConn,
    force_step_state,
    force_task_state,
    make_task,
    named_task,
)

QUEUE = "orchestration_task_finalizations"
LINEAR = {"a": [], "b": ["a"], "c": ["b"], "d": ["c"]}
OLD = "now() - interval '40 days'"


def connect(url: str) -> DictConn:
    return psycopg.connect(url, autocommit=True, row_factory=dict_row)


def dead_rows(conn: DictConn, table: str) -> int:
    row = conn.execute("SELECT n_dead_tup FROM pg_stat_user_tables"
                       " WHERE schemaname = 'pgmq' AND relname = %s", (table,)).fetchone()
    assert row is not None
    return int(row["n_dead_tup"])


def churn_queue(url: str, messages: int) -> None:
    """Send and delete `messages` messages, then wait until the statistics show them dead."""
    with connect(url) as conn:
        conn.execute("SELECT pgmq.send_batch(%s, array_agg(jsonb_build_object('i', i)))"
                     " FROM generate_series(1, %s) i", (QUEUE, messages))
        conn.execute(f"DELETE FROM pgmq.q_{QUEUE}")
        deadline = time.monotonic() + 10
        while dead_rows(conn, f"q_{QUEUE}") < messages:
            assert time.monotonic() < deadline, "statistics never showed the dead rows"
            conn.execute("SELECT pg_stat_force_next_flush()")  # PostgreSQL 15+


async def test_pass_vacuums_a_queue_table_with_dead_rows(db_url: str) -> None:
    churn_queue(db_url, 1500)
    settings = MaintenanceSettings(queue_dead_rows=1000, retention_days=0)
    maintainer = Maintainer(url=db_url, settings=settings)
    async with open_database(db_url, min_size=1, max_size=1) as db:
        done = await maintainer.run_once(db, state=False, prune=False)
    assert [(t.qualified, u.vacuum) for t, u in done] == [(f"pgmq.q_{QUEUE}", True)]
    with connect(db_url) as conn:
        assert dead_rows(conn, f"q_{QUEUE}") == 0
        row = conn.execute("SELECT last_vacuum FROM pg_stat_user_tables"
                           " WHERE relname = %s", (f"q_{QUEUE}",)).fetchone()
        assert row is not None and row["last_vacuum"] is not None
    stats = maintainer.statistics()
    assert stats["leader"] and stats["vacuums"] == 1 and stats["passes"] == 1
    assert stats["tables"] == {f"pgmq.q_{QUEUE}": 1}


async def test_a_quiet_table_is_left_alone_and_one_replica_leads(db_url: str) -> None:
    settings = MaintenanceSettings(retention_days=0)
    first, second = (Maintainer(url=db_url, settings=settings) for _ in range(2))
    async with (open_database(db_url, min_size=1, max_size=1) as db1,
                open_database(db_url, min_size=1, max_size=1) as db2):
        assert await first.run_once(db1) == []  # nothing churned: no upkeep
        assert first.stats.leader
        await second.run_once(db2)
        assert not second.stats.leader and second.stats.passes == 0
        await first.run_once(db1)  # still the leader (the lock is not taken twice)
        assert first.stats.leader and first.stats.passes == 2
        await db1.run_autocommit(release_lead)  # what a stopping leader does
        await second.run_once(db2)
        assert second.stats.leader
        await first.run_once(db1)
        assert not first.stats.leader


def finished_task(conn: DictConn, nt: UUID, state: str = "complete", *,
                  at: str = OLD) -> UUID:
    """A linear-4 task whose steps ran (transitions with audit rows) and that reached
    `state` at `at` (an SQL expression)."""
    task, steps = make_task(conn, nt, LINEAR)
    for step in steps.values():
        for to in ("enqueued", "in_progress", "enqueued_for_orchestration", "complete"):
            force_step_state(conn, step, to)
    force_task_state(conn, task, state)
    conn.execute(f"UPDATE tasker.task_transitions SET created_at = {at}"
                 " WHERE task_uuid = %s AND most_recent", (task,))
    return task


def footprint(conn: DictConn, task: UUID, steps: list[UUID] | None = None) -> dict[str, int]:
    """Rows of every table that belong to `task`: rows keyed by a step are counted by the
    task's step uuids (`steps`, read now unless given), so a row left behind by a deleted
    step still counts (the logs, audit rows and edges have no foreign keys to their step:
    migration 0026)."""
    if steps is None:
        steps = step_uuids(conn, task)
    queries = {
        "tasks": "SELECT count(*) FROM tasker.tasks WHERE task_uuid = %(t)s",
        "steps": "SELECT count(*) FROM tasker.workflow_steps WHERE task_uuid = %(t)s",
        "edges": "SELECT count(*) FROM tasker.workflow_step_edges"
                 " WHERE to_step_uuid = ANY (%(s)s) OR from_step_uuid = ANY (%(s)s)",
        "step_transitions": "SELECT count(*) FROM tasker.workflow_step_transitions"
                            " WHERE workflow_step_uuid = ANY (%(s)s)",
        "audit": "SELECT count(*) FROM tasker.workflow_step_result_audit"
                 " WHERE task_uuid = %(t)s OR workflow_step_uuid = ANY (%(s)s)",
        "task_transitions": "SELECT count(*) FROM tasker.task_transitions WHERE task_uuid = %(t)s",
        "dlq": "SELECT count(*) FROM tasker.tasks_dlq WHERE task_uuid = %(t)s",
    }
    out = {}
    for name, query in queries.items():
        row = conn.execute(query.replace("count(*)", "count(*) AS n"),
                           {"t": task, "s": steps}).fetchone()
        assert row is not None
        out[name] = int(row["n"])
    return out


def step_uuids(conn: DictConn, task: UUID) -> list[UUID]:
    return [r["workflow_step_uuid"] for r in conn.execute(
        "SELECT workflow_step_uuid FROM tasker.workflow_steps WHERE task_uuid = %s", (task,))]


def dlq_entry(conn: DictConn, task: UUID, status: str, at: str) -> None:
    conn.execute(
        "INSERT INTO tasker.tasks_dlq (task_uuid, original_state, dlq_reason, resolution_status,"
        f" task_snapshot, dlq_timestamp, created_at, updated_at) VALUES (%s, 'error',"
        f" 'manual_dlq', %s, '{{}}', {at}, {at}, {at})", (task, status))


def side_rows(conn: DictConn) -> None:
    """An old and a young row of each kind retention handles besides tasks."""
    for rid, at in (("old-request", OLD), ("young-request", "now()")):
        conn.execute("INSERT INTO tasker.task_request_outcomes (request_id, outcome, recorded_at)"
                     f" VALUES (%s, 'invalid', {at})", (rid,))
    for msg_id, at in ((1, OLD), (2, "now()")):
        conn.execute("INSERT INTO tasker.poison_messages (queue_name, msg_id, read_ct, reason,"
                     f" set_aside_at) VALUES (%s, %s, 5, 'test', {at})", (QUEUE, msg_id))
    conn.execute("SELECT pgmq.send(%s, %s) FROM generate_series(1, 2)", (QUEUE, Jsonb({})))
    conn.execute(f"SELECT pgmq.archive(%s, msg_id) FROM pgmq.q_{QUEUE}", (QUEUE,))
    conn.execute(f"UPDATE pgmq.a_{QUEUE} SET archived_at = {OLD}"
                 f" WHERE msg_id = (SELECT min(msg_id) FROM pgmq.a_{QUEUE})")


def build_history(conn: DictConn) -> dict[str, UUID]:
    nt = named_task(conn)
    tasks = {
        "old_complete": finished_task(conn, nt),
        "old_cancelled": finished_task(conn, nt, "cancelled"),
        "old_error_resolved_dlq": finished_task(conn, nt, "error"),
        "old_error_open_dlq": finished_task(conn, nt, "error"),
        "old_error_recent_dlq": finished_task(conn, nt, "error"),
        "young_complete": finished_task(conn, nt, at="now() - interval '1 day'"),
        "old_unfinished": finished_task(conn, nt, "waiting_for_retry"),
    }
    dlq_entry(conn, tasks["old_error_resolved_dlq"], "manually_resolved", OLD)
    dlq_entry(conn, tasks["old_error_open_dlq"], "pending", OLD)
    dlq_entry(conn, tasks["old_error_recent_dlq"], "manually_resolved", "now()")
    side_rows(conn)
    return tasks


def remaining(conn: DictConn, query: str) -> list[Any]:
    return [next(iter(r.values())) for r in conn.execute(query).fetchall()]


def test_prune_deletes_old_finished_tasks_with_all_their_rows(db_url: str) -> None:
    with connect(db_url) as conn:
        tasks = build_history(conn)
        steps = {name: step_uuids(conn, t) for name, t in tasks.items()}
        before = {name: footprint(conn, t, steps[name]) for name, t in tasks.items()}
    assert before["old_complete"] == {"tasks": 1, "steps": 4, "edges": 3,
                                      "step_transitions": 20, "audit": 4,
                                      "task_transitions": 2, "dlq": 0}
    batches: list[int] = []
    with psycopg.connect(db_url, row_factory=dict_row) as conn:
        total = prune_history(conn, timedelta(days=30), batch_size=2,
                              on_batch=lambda c: batches.append(c.tasks))
    assert (total.tasks, total.steps, total.outcomes, total.poison, total.archived) == (
        3, 12, 1, 1, 1)
    assert batches[:2] == [2, 1]
    pruned = {"old_complete", "old_cancelled", "old_error_resolved_dlq"}
    with connect(db_url) as conn:
        for name, task in tasks.items():
            after = footprint(conn, task, steps[name])
            if name in pruned:
                assert after == dict.fromkeys(after, 0), name
            else:
                assert after == before[name], name
        assert remaining(conn, "SELECT request_id FROM tasker.task_request_outcomes") == [
            "young-request"]
        assert remaining(conn, "SELECT msg_id FROM tasker.poison_messages") == [2]
        assert len(remaining(conn, f"SELECT msg_id FROM pgmq.a_{QUEUE}")) == 1


async def test_maintenance_pass_prunes_with_its_retention(db_url: str) -> None:
    with connect(db_url) as conn:
        nt = named_task(conn)
        old, young = finished_task(conn, nt), finished_task(conn, nt, at="now()")
    maintainer = Maintainer(url=db_url, settings=MaintenanceSettings(retention_days=7))
    async with open_database(db_url, min_size=1, max_size=1) as db:
        await maintainer.run_once(db)
    assert maintainer.statistics()["pruned"]["tasks"] == 1
    with connect(db_url) as conn:
        assert footprint(conn, old)["tasks"] == 0 and footprint(conn, young)["tasks"] == 1


def test_cli_prune(db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    with connect(db_url) as conn:
        nt = named_task(conn)
        old = finished_task(conn, nt, at="now() - interval '8 days'")
        young = finished_task(conn, nt, at="now() - interval '6 days'")
    assert main(["db", "prune", "--older-than", "7d", "--database-url", db_url]) == 0
    assert "1 tasks (4 steps)" in capsys.readouterr().out
    with connect(db_url) as conn:
        assert footprint(conn, old)["tasks"] == 0 and footprint(conn, young)["tasks"] == 1
    assert main(["db", "prune", "--older-than", "7 days", "--database-url", db_url]) == 1
    assert "invalid age '7 days'" in capsys.readouterr().err


def explained(conn: DictConn, *, analyze: bool = False) -> list[str]:
    """From now on, the plan of every statement `conn` runs, nested ones included, is
    appended to the returned list (auto_explain; skips the test without a superuser); with
    `analyze`, each plan with the rows every node actually returned."""
    if not conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user"
                        ).fetchone()["rolsuper"]:  # type: ignore[index]
        pytest.skip("auto_explain needs a superuser")
    plans: list[str] = []
    conn.add_notice_handler(lambda d: plans.append(d.message_primary or ""))
    conn.execute("LOAD 'auto_explain'")
    conn.execute("SET auto_explain.log_min_duration = 0;"
                 " SET auto_explain.log_nested_statements = on; SET client_min_messages = log")
    if analyze:
        conn.execute("SET auto_explain.log_analyze = on")
    return plans


def assert_rows_at_most(plans: list[str], bound: int) -> None:
    """No node of these analyzed plans (`explained(..., analyze=True)`) returned more than
    `bound` rows: none reads more than the one task it works on."""
    for plan in plans:
        returned = [int(m) for m in re.findall(r"actual time=\S+ rows=(\d+)", plan)]
        assert returned and max(returned) <= bound, plan


def test_readiness_plan_probes_indexes_after_analyze_of_small_tables(db_url: str) -> None:
    """ANALYZEd while tiny, the tables made the cached readiness plan hash every step's
    current state (a scan that grows with history); it must stay index probes."""
    with connect(db_url) as conn:
        nt = named_task(conn)
        task, *_ = [finished_task(conn, nt, at="now()") for _ in range(10)]
        conn.execute("ANALYZE")
        plans = explained(conn)
        conn.execute("SELECT * FROM tasker.get_step_readiness_status_v1(%s)", (task,))
    plan = next(p for p in plans if "workflow_step_transitions" in p)
    lines = plan.splitlines()
    lines = lines[next(i for i, line in enumerate(lines) if "(cost=" in line):]  # the plan
    whole = re.compile(r"Hash (Right |Left |Full |Semi |Anti )?Join|Merge|Materialize|Seq Scan")
    assert not any(whole.search(line) for line in lines), plan
    scans = [i for i, line in enumerate(lines) if "Index Scan" in line or "Index Only Scan" in line]
    assert len(scans) >= 4, plan
    for i in scans:  # every index scan is a probe, none reads a whole index
        assert "Index Cond" in lines[i + 1], plan


def test_dashboard_windows_and_audit_read_indexes_not_the_logs(db_url: str) -> None:
    """The dashboard's recent-claims and throughput windows and a step's result audit read
    the transition logs through an index (the logs are keyed by (step or task, sort_key);
    migration 0026 gave the time windows partial indexes): none of them can read the whole
    log, whose size is the engine's history. Seq scans are disabled so that a plan without a
    usable index shows as one."""
    with connect(db_url) as conn:
        nt = named_task(conn)
        task, *_ = [finished_task(conn, nt, at="now()") for _ in range(5)]
        step = step_uuids(conn, task)[0]
        conn.execute("ANALYZE")
        plans = explained(conn)
        conn.execute("SET enable_seqscan = off")
        conn.execute("SELECT * FROM tasker.ui_queue_activity_v1(NULL, 600)").fetchall()
        conn.execute("SELECT * FROM tasker.ui_throughput_v1(5)").fetchall()
        audit = conn.execute("SELECT * FROM tasker.get_step_audit_v1(%s, %s)",
                             (task, step)).fetchall()
    assert len(audit) == 1  # the step's one recorded result, with its transition
    logs = [p for p in plans if "_transitions" in p]
    assert len(logs) >= 3, plans
    for plan in logs:
        assert not re.search(r"Seq Scan on (workflow_step|task)_transitions", plan), plan
    reads = "\n".join(logs)
    assert "idx_step_transitions_claims" in reads and "idx_task_transitions_finished" in reads


def test_task_creation_reads_only_its_own_rows_whatever_the_history(db_url: str) -> None:
    """Creating a task (its steps, their first transitions, its edges, the cycle check)
    touches the rows of that task and the registry, never a scan of everything created
    before: with the statistics of an ANALYZE taken while the tables were tiny and then a
    history of 80 tasks of the same shape (320 steps, 240 edges), no plan node of the
    creation returns more rows than the task has. (The cycle check once read every edge,
    and a NOT EXISTS probe of the edges on (from, to, name) every edge with that name.)"""
    steps = [{"name": f"hist_{i}"} for i in range(4)]
    edges = [{"from": f"hist_{i}", "to": f"hist_{i + 1}"} for i in range(3)]

    def create(conn: DictConn, nt: UUID, n: int) -> None:
        conn.execute("SELECT tasker.create_task_v1(%s, %s, %s, %s)",
                     (nt, Jsonb({"identity_hash": f"history-{n}", "correlation_id": str(nt)}),
                      Jsonb(steps), Jsonb(edges)))

    with connect(db_url) as conn:
        nt = named_task(conn)
        create(conn, nt, -1)
        conn.execute("ANALYZE")  # statistics of tiny tables, as a new deployment has them
        for n in range(80):
            create(conn, nt, n)
        plans = explained(conn, analyze=True)
        create(conn, nt, 80)
    nested = [p for p in plans if "workflow_step" in p and "create_task_v1" not in p]
    assert len(nested) >= 3, plans
    assert_rows_at_most(nested, len(steps) * 2)

