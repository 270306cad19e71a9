"""The SQL compare-and-swap transitions agree with the Python state tables (SPEC §2).

One database serves every hypothesis example (a task or step is created per example).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from typing import Any
from uuid import UUID

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from tasker_shared.db.connect import with_database
from tasker_shared.domain.states import (
    STEP_TRANSITIONS,
    TASK_TRANSITIONS,
    StepEvent,
    StepState,
    TaskEvent,
    TaskState,
)
from tests.conftest import create_database, drop_database
from tests.integration.dag_support import (
    DictConn,
    force_step_state,
    force_task_state,
    make_task,
    named_task,
)

EXAMPLES = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def shared_conn(pg_server: str, template_database: str) -> Iterator[DictConn]:
    name = create_database(pg_server, template=template_database)
    try:
        with psycopg.connect(with_database(pg_server, name), autocommit=True,
                             row_factory=dict_row) as conn:
            yield conn
    finally:
        drop_database(pg_server, name)


@pytest.fixture(scope="module")
def nt(shared_conn: DictConn) -> UUID:
    return named_task(shared_conn, "state_machine")


def new_task(conn: DictConn, nt: UUID, state: TaskState) -> UUID:
    task, _ = make_task(conn, nt, {})
    if state is not TaskState.PENDING:
        force_task_state(conn, task, state.value)
    return task


def new_step(conn: DictConn, nt: UUID, state: StepState) -> UUID:
    _, ids = make_task(conn, nt, {"only": []}, prefix="sm_")
    if state is not StepState.PENDING:
        force_step_state(conn, ids["only"], state.value)
    return ids["only"]


def task_rows(conn: DictConn, task: UUID) -> list[dict[str, Any]]:
    return conn.execute(
        "SELECT from_state, to_state, sort_key, most_recent, processor_uuid, metadata"
        " FROM tasker.task_transitions WHERE task_uuid = %s ORDER BY sort_key", (task,)).fetchall()


def step_rows(conn: DictConn, step: UUID) -> list[dict[str, Any]]:
    """A step's transitions; `most_recent`: the last one, and the state its row holds."""
    return conn.execute(
        "SELECT st.from_state, st.to_state, st.sort_key, st.metadata,"
        "       st.sort_key = max(st.sort_key) OVER () AND st.to_state = ws.current_state"
        "           AS most_recent"
        " FROM tasker.workflow_step_transitions st"
        " JOIN tasker.workflow_steps ws ON ws.workflow_step_uuid = st.workflow_step_uuid"
        " WHERE st.workflow_step_uuid = %s ORDER BY st.sort_key",
        (step,)).fetchall()


def transition_task(conn: DictConn, task: UUID, from_state: str, event: str,
                    processor: UUID | None = None) -> str | None:
    row = conn.execute("SELECT tasker.transition_task_v1(%s, %s, %s, %s, %s) AS s",
                       (task, from_state, event, processor, Jsonb({"why": "test"}))).fetchone()
    assert row is not None
    return row["s"]  # type: ignore[no-any-return]


def transition_step(conn: DictConn, step: UUID, from_states: list[str], event: str) -> str | None:
    row = conn.execute("SELECT tasker.transition_step_v1(%s, %s, %s) AS s",
                       (step, from_states, event)).fetchone()
    assert row is not None
    return row["s"]  # type: ignore[no-any-return]


def assert_one_most_recent(rows: list[dict[str, Any]]) -> None:
    assert sum(1 for r in rows if r["most_recent"]) == 1
    assert rows[-1]["most_recent"]
    assert [r["sort_key"] for r in rows] == list(range(1, len(rows) + 1))


# -- the tables themselves ------------------------------------------------------------------


def test_sql_task_table_equals_python(conn: DictConn) -> None:
    rows = conn.execute("SELECT from_state, event, to_state FROM tasker.task_state_transitions")
    sql = {(r["from_state"], r["event"]): r["to_state"] for r in rows.fetchall()}
    python = {(f.value, e.value): t.value for (f, e), t in TASK_TRANSITIONS.items()}
    assert sql == python


def test_sql_step_table_equals_python(conn: DictConn) -> None:
    rows = conn.execute("SELECT from_state, event, to_state FROM tasker.step_state_transitions")
    sql = {(r["from_state"], r["event"]): r["to_state"] for r in rows.fetchall()}
    python = {(f.value, e.value): t.value for (f, e), t in STEP_TRANSITIONS.items()}
    assert sql == python


def test_transition_tables_only_name_known_states(conn: DictConn) -> None:
    """The CHECK constraints admit exactly the 12 task and 10 step states."""
    for fn, states in (("is_task_state_v1", TaskState), ("is_step_state_v1", StepState)):
        known = [s.value for s in states]
        row = conn.execute(
            f"SELECT array_agg(s) FILTER (WHERE tasker.{fn}(s)) AS ok FROM unnest(%s::text[]) s",
            ([*known, "", "Complete", "done", "pending "],)).fetchone()
        assert row is not None and sorted(row["ok"]) == sorted(known)
    for table in ("task_transitions", "workflow_step_transitions"):
        defs = [r["d"] for r in conn.execute(
            "SELECT pg_get_constraintdef(c.oid) AS d FROM pg_constraint c"
            " WHERE c.conrelid = %s::regclass AND c.contype = 'c'", (f"tasker.{table}",))]
        assert sum("from_state" in d for d in defs) == 1
        assert sum("to_state" in d for d in defs) == 1


def test_transition_rows_with_unknown_states_are_refused(conn: DictConn) -> None:
    task, steps = make_task(conn, named_task(conn), {"a": []})
    for sql, params in (
            ("INSERT INTO tasker.task_transitions (task_uuid, from_state, to_state, sort_key,"
             " most_recent) VALUES (%s, 'pending', 'finished', 99, false)", (task,)),
            ("INSERT INTO tasker.task_transitions (task_uuid, from_state, to_state, sort_key,"
             " most_recent) VALUES (%s, 'nowhere', 'complete', 99, false)", (task,)),
            ("INSERT INTO tasker.workflow_step_transitions (workflow_step_uuid, from_state,"
             " to_state, sort_key) VALUES (%s, 'pending', 'done', 99)", (steps["a"],)),
            ("UPDATE tasker.workflow_steps SET current_state = 'done'"
             " WHERE workflow_step_uuid = %s", (steps["a"],))):
        with pytest.raises(psycopg.errors.CheckViolation), conn.transaction():
            conn.execute(sql, params)


def test_terminal_task_states_have_no_way_out() -> None:
    terminal = {TaskState.COMPLETE, TaskState.ERROR, TaskState.CANCELLED,
                TaskState.RESOLVED_MANUALLY}
    # but one: an operator's fix of a step resumes a task in error (issue 16)
    assert [k for k in TASK_TRANSITIONS if k[0] in terminal] == [
        (TaskState.ERROR, TaskEvent.RESUME)]
    step_terminal = {StepState.COMPLETE, StepState.CANCELLED, StepState.RESOLVED_MANUALLY}
    assert not [k for k in STEP_TRANSITIONS if k[0] in step_terminal]


# -- task CAS ---------------------------------------------------------------------------------


@EXAMPLES
@given(state=st.sampled_from(list(TaskState)), event=st.sampled_from(list(TaskEvent)),
       other=st.sampled_from(list(TaskState)))
def test_task_cas_matches_python(shared_conn: DictConn, nt: UUID, state: TaskState,
                                 event: TaskEvent, other: TaskState) -> None:
    conn = shared_conn
    task = new_task(conn, nt, state)
    before = task_rows(conn, task)

    if other is not state:  # a stale `from` finds nothing to do, whatever the event
        assert transition_task(conn, task, other.value, event.value) is None
        assert task_rows(conn, task) == before

    expected = TASK_TRANSITIONS.get((state, event))
    processor = uuid.uuid4()
    if expected is None:
        with pytest.raises(psycopg.Error) as info:
            transition_task(conn, task, state.value, event.value, processor)
        assert info.value.sqlstate == "TK001"
        assert task_rows(conn, task) == before
        return
    assert transition_task(conn, task, state.value, event.value, processor) == expected.value
    rows = task_rows(conn, task)
    assert len(rows) == len(before) + 1
    assert_one_most_recent(rows)
    last = rows[-1]
    assert (last["from_state"], last["to_state"]) == (state.value, expected.value)
    assert last["processor_uuid"] == processor
    assert last["metadata"]["event"] == event.value
    assert last["metadata"]["why"] == "test"
    flags = conn.execute("SELECT complete, completed_at FROM tasker.tasks WHERE task_uuid = %s",
                         (task,)).fetchone()
    assert flags is not None
    assert flags["complete"] == (expected in (TaskState.COMPLETE, TaskState.RESOLVED_MANUALLY))
    terminal = expected in (TaskState.COMPLETE, TaskState.ERROR, TaskState.CANCELLED,
                            TaskState.RESOLVED_MANUALLY)
    assert (flags["completed_at"] is not None) == terminal


@EXAMPLES
@given(events=st.lists(st.sampled_from(list(TaskEvent)), min_size=1, max_size=12))
def test_task_event_sequences(shared_conn: DictConn, nt: UUID, events: list[TaskEvent]) -> None:
    """Any sequence of events: SQL and Python walk in step, one most_recent row throughout."""
    conn = shared_conn
    task = new_task(conn, nt, TaskState.PENDING)
    state = TaskState.PENDING
    for event in events:
        expected = TASK_TRANSITIONS.get((state, event))
        if expected is None:
            with pytest.raises(psycopg.Error) as info:
                transition_task(conn, task, state.value, event.value)
            assert info.value.sqlstate == "TK001"
        else:
            assert transition_task(conn, task, state.value, event.value) == expected.value
            state = expected
        rows = task_rows(conn, task)
        assert_one_most_recent(rows)
        current = conn.execute("SELECT tasker.get_current_task_state_v1(%s) AS s",
                               (task,)).fetchone()
        assert current is not None
        assert current["s"] == state.value


def test_task_cas_unknown_task_is_not_found(conn: DictConn) -> None:
    with pytest.raises(psycopg.Error) as info:
        conn.execute("SELECT tasker.transition_task_v1(%s, 'pending', 'start')", (uuid.uuid4(),))
    assert info.value.sqlstate == "TK404"


# -- step CAS ---------------------------------------------------------------------------------

_TO_PROCESSED = {StepState.COMPLETE, StepState.CANCELLED, StepState.RESOLVED_MANUALLY}


@EXAMPLES
@given(state=st.sampled_from(list(StepState)), event=st.sampled_from(list(StepEvent)),
       others=st.lists(st.sampled_from(list(StepState)), max_size=3))
def test_step_cas_matches_python(shared_conn: DictConn, nt: UUID, state: StepState,
                                 event: StepEvent, others: list[StepState]) -> None:
    conn = shared_conn
    step = new_step(conn, nt, state)
    conn.execute("UPDATE tasker.workflow_steps SET in_process = %s, attempts = 2"
                 " WHERE workflow_step_uuid = %s", (state is StepState.IN_PROGRESS, step))
    before = step_rows(conn, step)

    stale = [o.value for o in others if o is not state]
    if stale:
        assert transition_step(conn, step, stale, event.value) is None
        assert step_rows(conn, step) == before

    expected = STEP_TRANSITIONS.get((state, event))
    accepted = [*stale, state.value]  # several acceptable `from` states, the current among them
    if expected is None:
        with pytest.raises(psycopg.Error) as info:
            transition_step(conn, step, accepted, event.value)
        assert info.value.sqlstate == "TK001"
        assert step_rows(conn, step) == before
        return
    assert transition_step(conn, step, accepted, event.value) == expected.value
    rows = step_rows(conn, step)
    assert len(rows) == len(before) + 1
    assert_one_most_recent(rows)
    assert (rows[-1]["from_state"], rows[-1]["to_state"]) == (state.value, expected.value)
    assert rows[-1]["metadata"]["event"] == event.value
    ws = conn.execute("SELECT processed, in_process, attempts FROM tasker.workflow_steps"
                      " WHERE workflow_step_uuid = %s", (step,)).fetchone()
    assert ws is not None
    if expected in _TO_PROCESSED:
        assert ws["processed"]
        assert not ws["in_process"]
    elif expected is StepState.IN_PROGRESS:
        assert ws["in_process"]  # Start: in_process = true (SPEC §2.2)
    else:
        assert not ws["in_process"]
    # ResetForRetry resets the attempt count; every other event leaves it alone.
    assert ws["attempts"] == (0 if event is StepEvent.RESET_FOR_RETRY else 2)


@EXAMPLES
@given(events=st.lists(st.sampled_from(list(StepEvent)), min_size=1, max_size=12))
def test_step_event_sequences(shared_conn: DictConn, nt: UUID, events: list[StepEvent]) -> None:
    conn = shared_conn
    step = new_step(conn, nt, StepState.PENDING)
    state = StepState.PENDING
    for event in events:
        expected = STEP_TRANSITIONS.get((state, event))
        if expected is None:
            with pytest.raises(psycopg.Error) as info:
                transition_step(conn, step, [state.value], event.value)
            assert info.value.sqlstate == "TK001"
        else:
            assert transition_step(conn, step, [state.value], event.value) == expected.value
            state = expected
        assert_one_most_recent(step_rows(conn, step))
        current = conn.execute("SELECT tasker.get_current_step_state_v1(%s) AS s",
                               (step,)).fetchone()
        assert current is not None
        assert current["s"] == state.value


def test_step_cas_with_null_or_empty_from_changes_nothing(conn: DictConn) -> None:
    nt = named_task(conn)
    _, ids = make_task(conn, nt, {"a": []})
    step = ids["a"]
    before = step_rows(conn, step)
    assert transition_step(conn, step, [], "enqueue") is None
    row = conn.execute("SELECT tasker.transition_step_v1(%s, NULL, 'enqueue') AS s",
                       (step,)).fetchone()
    assert row is not None
    assert row["s"] is None
    row = conn.execute("SELECT tasker.transition_step_v1(%s, ARRAY[NULL]::text[], 'enqueue') AS s",
                       (step,)).fetchone()
    assert row is not None
    assert row["s"] is None
    assert step_rows(conn, step) == before


def test_concurrent_cas_only_one_wins(db_url: str, conn: DictConn) -> None:
    """Two sessions racing the same CAS: the second, after the first commits, gets NULL."""
    nt = named_task(conn)
    task = new_task(conn, nt, TaskState.PENDING)
    with psycopg.connect(db_url, row_factory=dict_row) as a, \
            psycopg.connect(db_url, row_factory=dict_row) as b:
        first = a.execute("SELECT tasker.transition_task_v1(%s, 'pending', 'start') AS s",
                          (task,)).fetchone()
        assert first is not None
        assert first["s"] == "initializing"
        result: list[Any] = []

        def second() -> None:
            r = b.execute("SELECT tasker.transition_task_v1(%s, 'pending', 'start') AS s",
                          (task,)).fetchone()
            result.append(r["s"] if r else "missing")
            b.commit()

        thread = threading.Thread(target=second)
        thread.start()
        thread.join(0.3)
        assert thread.is_alive(), "the second CAS must wait for the first transaction's lock"
        a.commit()
        thread.join(5)
        assert result == [None]
    assert_one_most_recent(task_rows(conn, task))
