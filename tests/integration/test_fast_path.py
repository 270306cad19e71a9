"""One task is fast (issue 18 item 3): a worker's plain success is applied by the statement
that records it (the step completes, the next step is enqueued, the last one completes the
task), with no result or finalization message; a failure or a decision outcome still goes
to result processing, which decides the task's outcome in the transaction that applies the
result (no finalization message either); the worker claims the step its record enqueued in
the record's own transaction. Real claims, records and result processing."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest
import trio
from psycopg.rows import dict_row

from tasker_results.handlers import ResultHandlers, lock_result_messages
from tasker_shared.contracts.messages import decode_step_message
from tasker_shared.db.database import Database
from tasker_shared.domain.template.text import parse_template_text
from tasker_shared.store.templates import register_template
from tasker_worker.examples import templates_dir
from tasker_worker.runtime.claims import (
    ClaimedStep,
    StepOutcome,
    claim_steps,
    record_and_claim,
    record_results,
)
from tasker_worker.runtime.dispatcher import Dispatcher
from tests.integration.test_maintenance import assert_rows_at_most, explained
from tests.integration.test_poison_messages import (
    FINALIZATIONS,
    RESULTS,
    WORKER_QUEUE,
    DictConn,
    claim,
    create_task,
    left_on,
    processor,
)
from tests.support import service_settings


@pytest.fixture
def conn(conn: DictConn) -> DictConn:
    """The plain test connection, with the linear workflow registered."""
    register_template(conn, parse_template_text(
        (templates_dir() / "linear_workflow.yaml").read_text(), source="linear_workflow.yaml"))
    return conn


async def _record(db: Database, step: ClaimedStep, *, success: bool = True,
                  result: Any = None) -> list[str]:
    payload = {"step_uuid": str(step.step_uuid), "success": success,
               "result": {"value": 4} if result is None else result,
               "error": None if success else {"message": "boom", "error_type": "test"}}
    outcome = StepOutcome(step=step, success=success, payload=payload,
                          handler="examples.square", error=None)
    return await db.run_autocommit(record_results, [outcome], worker_id="test")


def _state(c: DictConn, step: ClaimedStep) -> str:
    row = c.execute("SELECT tasker.get_current_step_state_v1(%s) AS s",
                       (step.step_uuid,)).fetchone()
    assert row is not None
    return str(row["s"])


def _task(c: DictConn, task: uuid.UUID) -> dict[str, Any]:
    row = c.execute("SELECT tasker.get_current_task_state_v1(%s) AS state, completed_at"
                       " FROM tasker.tasks WHERE task_uuid = %s", (task, task)).fetchone()
    assert row is not None
    return row


def _history(c: DictConn, step: ClaimedStep) -> list[str]:
    return [r["to_state"] for r in c.execute(
        "SELECT to_state FROM tasker.workflow_step_transitions WHERE workflow_step_uuid = %s"
        " ORDER BY sort_key", (step.step_uuid,))]


async def test_plain_successes_complete_the_task_in_their_records(
        db: Database, conn: DictConn) -> None:
    task = await create_task(db, conn)
    for n in range(4):
        [step] = await claim(db)
        assert await _record(db, step) == ["recorded"]
        assert _state(conn, step) == "complete"
        assert _history(conn, step) == ["pending", "enqueued", "in_progress",
                                        "enqueued_for_orchestration", "complete"]
        assert left_on(conn, RESULTS) == []
        # the next step is enqueued by the same statement; after the last, the task is done
        assert len(left_on(conn, WORKER_QUEUE)) == (1 if n < 3 else 0)
        assert (_task(conn, task)["completed_at"] is None) == (n < 3)
    assert _task(conn, task)["state"] == "complete"
    assert left_on(conn, FINALIZATIONS) == []


async def test_decision_outcomes_and_failures_go_to_result_processing(
        db: Database, conn: DictConn, db_url: str) -> None:
    task = await create_task(db, conn)
    [step] = await claim(db)
    outcome = {"decision_point_outcome": {"type": "no_branches"}}
    assert await _record(db, step, result=outcome) == ["recorded"]
    assert _state(conn, step) == "enqueued_for_orchestration"
    assert len(left_on(conn, RESULTS)) == 1
    conn.execute(f"DELETE FROM pgmq.q_{RESULTS}")  # not a decision step: not this test's point
    conn.execute("SELECT tasker.transition_step_v1(%s, ARRAY['enqueued_for_orchestration'],"
                 " 'complete', '{}')", (step.step_uuid,))
    conn.execute("SELECT tasker.evaluate_task_v1(%s)", (task,))
    [step] = await claim(db)
    assert await _record(db, step, success=False) == ["recorded"]
    assert _state(conn, step) == "enqueued_as_error_for_orchestration"
    handlers = ResultHandlers(processor_uuid=uuid.uuid4(), settings=service_settings(db_url))
    consume = processor(db, RESULTS, decode_step_message, handlers.handle_step_results,
                        lock_result_messages)
    assert await consume(None, 10) == 1
    assert _state(conn, step) == "error"  # not retryable
    # result processing decided the outcome in the applying transaction: blocked, with a
    # DLQ entry, and no finalization request
    assert _task(conn, task)["state"] == "blocked_by_failures"
    assert handlers.finalized == 1
    assert left_on(conn, FINALIZATIONS) == []
    with psycopg.connect(db_url, autocommit=True) as c:
        row = c.execute("SELECT count(*) FROM tasker.tasks_dlq WHERE task_uuid = %s",
                        (task,)).fetchone()
    assert row is not None and row[0] == 1


async def test_the_failure_path_reads_only_its_task_whatever_the_history(
        db: Database, conn: DictConn, db_url: str) -> None:
    """A failure's record, its application by result processing (the step's error, the
    task blocked, its DLQ entry) touch the rows of their task, never a scan of what ran
    before: with the statistics of an ANALYZE taken while the tables were tiny and then a
    history of 30 failed tasks, no plan node of the next failure returns more rows than a
    task has."""
    handlers = ResultHandlers(processor_uuid=uuid.uuid4(), settings=service_settings(db_url))
    consume = processor(db, RESULTS, decode_step_message, handlers.handle_step_results,
                        lock_result_messages)

    def fail(c: DictConn, apply: DictConn) -> None:
        [step] = claim_steps(c, WORKER_QUEUE, None, 1, visibility_seconds=30,
                             worker_id="w-1", max_reads=5)
        failed = StepOutcome(step=step, success=False, payload={
            "step_uuid": str(step.step_uuid), "success": False, "result": None,
            "error": {"message": "boom", "error_type": "test"}},
            handler="examples.square", error="boom")
        assert record_results(c, [failed], worker_id="w-1") == ["recorded"]
        assert consume._batch(apply, None, 10, []) == 1

    with psycopg.connect(db_url, row_factory=dict_row) as apply:
        first = await create_task(db, conn)
        fail(conn, apply)
        conn.execute("ANALYZE")  # statistics of tiny tables, as a new deployment has them
        for number in range(30):
            await create_task(db, conn, number=4 + 2 * number)
            fail(conn, apply)
        last = await create_task(db, conn, number=100)
        plans = explained(conn, analyze=True)
        apply_plans = explained(apply, analyze=True)
        apply.commit()
        fail(conn, apply)
    for task in (first, last):
        assert _task(conn, task)["state"] == "blocked_by_failures"
    nested = [p for p in plans + apply_plans if "actual time=" in p]
    assert len(nested) >= 10, nested
    assert_rows_at_most(nested, 8)


def _dispatcher(db: Database, executor: InstantExecutor) -> Dispatcher:
    return Dispatcher(db=db, executor=executor,  # type: ignore[arg-type]
                      capacity=4, visibility_seconds=30, worker_id="chain", max_reads=5)


class InstantExecutor:
    """Every step succeeds at once."""

    def __init__(self) -> None:
        self.counted: list[str] = []

    async def watch_cancellations(self) -> None:
        await trio.sleep_forever()

    async def execute(self, step: ClaimedStep) -> StepOutcome:
        payload = {"step_uuid": str(step.step_uuid), "success": True, "result": {"n": 1}}
        return StepOutcome(step=step, success=True, payload=payload, handler="instant",
                           error=None)

    def count(self, outcome: StepOutcome, recorded: str) -> None:
        self.counted.append(recorded)


async def test_the_worker_claims_the_next_step_in_the_record(
        db: Database, conn: DictConn) -> None:
    """One claim through the scheduler (the first step); each later step is claimed by the
    transaction that recorded its parent, and the task completes."""
    task = await create_task(db, conn)
    executor = InstantExecutor()
    dispatcher = _dispatcher(db, executor)
    async with trio.open_nursery() as nursery:
        await nursery.start(dispatcher.run)
        dispatcher.scheduler.want(WORKER_QUEUE)  # no consumer here: nothing else wakes it
        with trio.fail_after(15):
            for _ in iter(lambda: _task(conn, task)["completed_at"] is not None, True):
                await trio.sleep(0.01)  # the database changes: no event to wait for
        dispatcher.stop()
    assert executor.counted == ["recorded"] * 4
    assert dispatcher.scheduler.claims == 1 and dispatcher.claimed == 4
    assert dispatcher.free == 4  # every slot back
    assert _task(conn, task)["state"] == "complete"


def _outcome(step: ClaimedStep) -> StepOutcome:
    return StepOutcome(step=step, success=True, payload={
        "step_uuid": str(step.step_uuid), "success": True, "result": {"value": 4},
        "error": None}, handler="examples.square", error=None)


async def test_the_step_path_reads_only_its_task_whatever_the_history(
        db: Database, conn: DictConn) -> None:
    """Claim, record, evaluation, hand-off and the task's outcome touch the rows of their
    task, never a scan of what ran before: with the statistics of an ANALYZE taken while the
    tables were tiny and then a history of 30 linear tasks run through the same calls, no
    plan node of the next task's claim and records returns more rows than a task has."""
    def run(c: DictConn) -> None:
        [step] = claim_steps(c, WORKER_QUEUE, None, 1, visibility_seconds=30,
                             worker_id="w-1", max_reads=5)
        while True:
            recorded, claimed = record_and_claim(
                c, [_outcome(step)], worker_id="w-1", queue=WORKER_QUEUE, limit=1,
                visibility_seconds=30, max_reads=5)
            assert recorded == ["recorded"]
            if not claimed:
                return
            [step] = claimed

    task = await create_task(db, conn)
    run(conn)
    conn.execute("ANALYZE")  # statistics of tiny tables, as a new deployment has them
    for number in range(30):
        await create_task(db, conn, number=4 + 2 * number)
        run(conn)
    last = await create_task(db, conn, number=100)
    plans = explained(conn, analyze=True)
    run(conn)
    assert _task(conn, last)["state"] == "complete" and _task(conn, task)["state"] == "complete"
    nested = [p for p in plans if "actual time=" in p and "record_and_claim_v1(" not in p]
    assert len(nested) >= 10, plans
    assert_rows_at_most(nested, 8)


async def test_a_record_hands_the_step_it_enqueues_to_its_own_claim(
        db: Database, conn: DictConn, db_url: str) -> None:
    """The step a plain success makes ready is claimed as it is enqueued (the hand-off):
    its message is sent hidden for the lease and read once, announced to no one; its row
    is in progress under the claim in one version, both transitions logged; the claim
    statement returns it with its parent's result."""
    task = await create_task(db, conn)
    [first] = await claim(db)
    with psycopg.connect(db_url, autocommit=True) as listener:
        channel = listener.execute("SELECT tasker.queue_channel_v1(%s) AS c",
                                   (WORKER_QUEUE,)).fetchone()
        assert channel is not None
        listener.execute(f'LISTEN "{channel[0]}"')
        recorded, claimed = await db.run_autocommit(
            record_and_claim, [_outcome(first)], worker_id="w-1", queue=WORKER_QUEUE,
            limit=1, visibility_seconds=30, max_reads=5)
        heard = list(listener.notifies(timeout=0.3, stop_after=1))
    assert recorded == ["recorded"] and len(claimed) == 1 and heard == []
    [second] = claimed
    assert second.step_name == "linear_step_2" and second.attempt == 1
    assert second.dependency_results["linear_step_1"]["result"] == {"value": 4}
    row = conn.execute(
        "SELECT ws.current_state, ws.attempts, ws.claim_msg_id, ws.in_process,"
        " ws.claimed_until = q.vt AS lease_is_vt, q.vt > now() + interval '20 s' AS hidden,"
        " q.read_ct FROM tasker.workflow_steps ws"
        f" JOIN pgmq.q_{WORKER_QUEUE} q ON q.msg_id = ws.claim_msg_id"
        " WHERE ws.workflow_step_uuid = %s", (second.step_uuid,)).fetchone()
    assert row == {"current_state": "in_progress", "attempts": 1, "claim_msg_id": second.msg_id,
                   "in_process": True, "lease_is_vt": True, "hidden": True, "read_ct": 1}
    log = conn.execute(
        "SELECT from_state, to_state, metadata ->> 'event' AS event, metadata ->> 'worker_id'"
        " AS worker, (metadata ->> 'msg_id')::bigint AS msg FROM tasker.workflow_step_transitions"
        " WHERE workflow_step_uuid = %s ORDER BY sort_key", (second.step_uuid,)).fetchall()
    assert [(r["from_state"], r["to_state"], r["event"]) for r in log] == [
        (None, "pending", "create"), ("pending", "enqueued", "enqueue"),
        ("enqueued", "in_progress", "start")]
    assert (log[2]["worker"], log[2]["msg"]) == ("w-1", second.msg_id)
    assert left_on(conn, WORKER_QUEUE) == [second.msg_id]
    # It runs and is recorded like any claimed step; the next one is handed off in turn.
    recorded, [third] = await db.run_autocommit(
        record_and_claim, [_outcome(second)], worker_id="w-1", queue=WORKER_QUEUE, limit=1,
        visibility_seconds=30, max_reads=5)
    assert recorded == ["recorded"] and third.step_name == "linear_step_3"
    assert _history(conn, second) == ["pending", "enqueued", "in_progress",
                                      "enqueued_for_orchestration", "complete"]
    assert _task(conn, task)["state"] == "steps_in_process"


async def test_a_hand_off_takes_no_more_than_the_record_reserved(
        db: Database, conn: DictConn) -> None:
    """A record that may claim nothing (all slots busy) or claims for another queue hands
    nothing off: the next step is enqueued, visible and announced as usual; a record's
    hand-off setting does not outlive its transaction."""
    await create_task(db, conn)
    [first] = await claim(db)
    conn.execute("SELECT tasker.ensure_queue_v1('worker_other_queue')")
    recorded, claimed = await db.run_autocommit(
        record_and_claim, [_outcome(first)], worker_id="w-1", queue="worker_other_queue",
        limit=1, visibility_seconds=30, max_reads=5)
    assert recorded == ["recorded"] and claimed == []
    [second] = await claim(db)  # visible in the queue, claimed the usual way
    assert second.step_name == "linear_step_2"
    row = conn.execute("SELECT current_setting('tasker.hand_off', true) AS h").fetchone()
    assert row is not None and not row["h"]
    recorded, claimed = await db.run_autocommit(
        record_and_claim, [_outcome(second)], worker_id="w-1", queue=WORKER_QUEUE, limit=0,
        visibility_seconds=30, max_reads=5)
    assert recorded == ["recorded"] and claimed == []
    assert _state(conn, second) == "complete"
    [third] = await claim(db)
    assert third.step_name == "linear_step_3"


async def test_a_record_whose_claim_fails_commits_nothing(
        db: Database, conn: DictConn) -> None:
    """The record and the claim are one statement, one transaction: a claim that fails (here
    from a queue that does not exist) rolls the record back with it; recorded again on its
    own (what the worker's recorder does next), it counts."""
    await create_task(db, conn)
    [first] = await claim(db)
    with pytest.raises(Exception, match="does not exist"):
        await db.run_autocommit(record_and_claim, [_outcome(first)], worker_id="w-1",
                     queue="worker_missing_queue", limit=1, visibility_seconds=30,
                     max_reads=5)
    assert _state(conn, first) == "in_progress"
    assert await db.run_autocommit(record_results, [_outcome(first)], worker_id="w-1") == [
        "recorded"]
    assert _state(conn, first) == "complete"


class GatedExecutor(InstantExecutor):
    """Succeeds once the test lets it."""

    def __init__(self) -> None:
        super().__init__()
        self.started = trio.Event()
        self.go = trio.Event()
        self.steps: list[ClaimedStep] = []

    async def execute(self, step: ClaimedStep) -> StepOutcome:
        self.steps.append(step)
        self.started.set()
        await self.go.wait()
        return await super().execute(step)


async def test_a_chained_claim_returning_after_claiming_was_cut_off_is_left_to_its_lease(
        db: Database, conn: DictConn, db_url: str) -> None:
    """The shutdown deadline (or a cancel without `stop`) ends claiming and the executors
    while a record that claims the next step in its transaction is held in the database:
    the record still commits, and the step it claimed, with no executor left to run it,
    stays claimed until its lease expires (before, handing it to the closed channel raised
    ClosedResourceError and the worker crashed)."""
    task = await create_task(db, conn)
    executor = GatedExecutor()
    dispatcher = _dispatcher(db, executor)
    async with trio.open_nursery() as nursery:
        await nursery.start(dispatcher.run)
        dispatcher.scheduler.want(WORKER_QUEUE)
        with trio.fail_after(15):
            await executor.started.wait()
        first = executor.steps[0]
        with psycopg.connect(db_url) as blocker:
            blocker.execute("SELECT 1 FROM tasker.workflow_steps WHERE workflow_step_uuid = %s"
                            " FOR UPDATE", (first.step_uuid,))
            executor.go.set()
            with trio.fail_after(15):  # the recorder took the result and chains a claim
                for _ in iter(lambda: dispatcher.scheduler.chaining(WORKER_QUEUE), True):
                    await trio.sleep(0.005)
            nursery.cancel_scope.cancel()  # what the runtime's shutdown deadline does
            blocker.commit()  # the record goes on (shielded), after claiming was cut off
    assert executor.counted == ["recorded"] and len(executor.steps) == 1
    assert dispatcher.claimed == 1  # the chained step reached no executor
    assert _state(conn, first) == "complete"
    held = conn.execute(
        "SELECT ws.workflow_step_uuid AS step_uuid,"
        " tasker.get_current_step_state_v1(ws.workflow_step_uuid) AS state"
        " FROM tasker.workflow_steps ws WHERE ws.task_uuid = %s"
        " AND ws.workflow_step_uuid <> %s", (task, first.step_uuid)).fetchall()
    assert [r["state"] for r in held if r["state"] != "pending"] == ["in_progress"]
    assert len(left_on(conn, WORKER_QUEUE)) == 1  # its message waits out the lease
