"""Poison messages on every queue (issue 12.1): a body or PGMQ headers nested 5,000 deep
(undecodable), or decodable but deeper than the bounds, or a request for a task that does
not exist, is set aside in tasker.poison_messages with its reason at its first read, and the
normal message behind it is processed. Real PGMQ, real SQL, the services' own processors,
handlers and claim; the poison is sent with raw SQL (jsonb built from text)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
import trio
from psycopg.rows import dict_row

from tasker_finalizer.handlers import FinalizerHandlers, lock_finalization_messages
from tasker_ingestion.handlers import IngestionHandlers, lock_request_messages
from tasker_results.handlers import ResultHandlers, lock_result_messages
from tasker_shared.contracts.messages import (
    decode_finalization_request,
    decode_step_message,
    decode_task_request_message,
)
from tasker_shared.db.database import Database
from tasker_shared.domain.template.text import parse_template_text
from tasker_shared.queue.consumer import ConsumerCounters
from tasker_shared.queue.processor import Handle, Lock, TransactionalProcessor
from tasker_shared.store.templates import register_template
from tasker_worker.examples import templates_dir
from tasker_worker.runtime.claims import ClaimedStep, StepOutcome, claim_steps, record_results
from tests.support import service_settings, submit, wait_task

DictConn = psycopg.Connection[dict[str, Any]]

DEEP = 5_000
UNDECODABLE = "[" * DEEP + "]" * DEEP  # far past Python's recursion limit
TOO_DEEP = "[" * 100 + "]" * 100  # decodable, but deeper than any bound
WORKER_QUEUE = "worker_examples_queue"
REQUESTS = "orchestration_task_requests"
RESULTS = "orchestration_step_results"
FINALIZATIONS = "orchestration_task_finalizations"

# (body, headers, reason) sent ahead of a normal message on each orchestration queue;
# "{shaped}" is a well-formed body of the queue's kind, naming nothing that exists.
POISON = [
    (UNDECODABLE, None, "undecodable body: JSON nested too deeply to decode"),
    ("{shaped}", '{"traceparent": ' + UNDECODABLE + "}",
     "undecodable headers: JSON nested too deeply to decode"),
    ('{"junk": ' + TOO_DEEP + ', "shaped": {shaped}}', None, "nests deeper than 72 levels"),
    ("{shaped}", '{"h": ' + TOO_DEEP + "}", "undecodable headers: nested deeper than 64"),
    ("{shaped}", '"not an object"', "undecodable headers: expected an object, got string"),
]


@pytest.fixture
def conn(db_url: str) -> Any:
    with psycopg.connect(db_url, autocommit=True, row_factory=dict_row) as c:
        for name in ("linear_workflow.yaml",):
            register_template(c, parse_template_text(
                (templates_dir() / name).read_text(), source=name))
        yield c


def send(conn: DictConn, queue: str, body: str, headers: str | None = None) -> int:
    row = conn.execute("SELECT tasker.send_v1(%s, %s::jsonb, %s::jsonb) AS id",
                       (queue, body, headers)).fetchone()
    assert row is not None
    return int(row["id"])


def send_poison(conn: DictConn, queue: str, shaped: dict[str, Any]) -> dict[int, str]:
    """The POISON messages on `queue`; msg_id -> the expected reason (a part of it)."""
    text = json.dumps(shaped)
    return {send(conn, queue, body.replace("{shaped}", text), headers): reason
            for body, headers, reason in POISON}


def poisoned(conn: DictConn, queue: str) -> dict[int, dict[str, Any]]:
    return {r["msg_id"]: r for r in conn.execute(
        "SELECT msg_id, read_ct, reason FROM tasker.poison_messages WHERE queue_name = %s",
        (queue,))}


def left_on(conn: DictConn, queue: str) -> list[int]:
    return [r["msg_id"] for r in conn.execute(f"SELECT msg_id FROM pgmq.q_{queue}")]


def assert_set_aside(conn: DictConn, queue: str, expected: dict[int, str], *,
                     read_ct: int = 0) -> None:
    """Every poison message is set aside with its reason at its first read (never through
    the read-count limit that failing handlers reach)."""
    found = poisoned(conn, queue)
    assert set(found) == set(expected), found
    for msg_id, reason in expected.items():
        assert reason in found[msg_id]["reason"], (found[msg_id]["reason"], reason)
        assert found[msg_id]["read_ct"] == read_ct, found[msg_id]


def processor(db: Database, queue: str, decode: Callable[[Any], Any], handle: Handle[Any],
              lock: Lock) -> TransactionalProcessor[Any]:
    """The consumer's processor as the service builds it (`Runtime.consume`)."""
    return TransactionalProcessor(db=db, queue=queue, decode=decode, handle=handle,
                                  counters=ConsumerCounters(), max_reads=5, lock=lock)


def ingestion(db: Database) -> TransactionalProcessor[Any]:
    handlers = IngestionHandlers(processor_uuid=uuid.uuid4(), environment="test")
    return processor(db, REQUESTS, decode_task_request_message,
                     handlers.handle_task_requests, lock_request_messages)


def request_body(rid: str, number: int = 2) -> str:
    return json.dumps({"request_id": rid, "task_request": {
        "name": "linear_workflow", "namespace": "examples", "version": "1.0.0",
        "context": {"even_number": number}}})


async def create_task(db: Database, conn: DictConn, number: int = 2) -> uuid.UUID:
    rid = str(uuid.uuid4())
    send(conn, REQUESTS, request_body(rid, number))
    assert await ingestion(db)(None, 10) == 1
    row = conn.execute("SELECT task_uuid FROM tasker.task_request_outcomes"
                       " WHERE request_id = %s", (rid,)).fetchone()
    assert row is not None and row["task_uuid"] is not None
    return uuid.UUID(str(row["task_uuid"]))


async def claim(db: Database, limit: int = 10) -> list[ClaimedStep]:
    return await db.run_autocommit(claim_steps, WORKER_QUEUE, None, limit,
                                   visibility_seconds=30, worker_id="test", max_reads=5)


async def record(db: Database, steps: list[ClaimedStep], *, success: bool = True) -> list[str]:
    """A success is applied by the record itself; a failure goes to result processing."""
    error = None if success else {"message": "boom", "error_type": "test"}
    outcomes = [StepOutcome(step=s, success=success, payload={
        "step_uuid": str(s.step_uuid), "success": success, "result": {"value": 4},
        "error": error}, handler="examples.square", error=None) for s in steps]
    return await db.run_autocommit(record_results, outcomes, worker_id="test")


async def test_task_requests(db: Database, conn: DictConn) -> None:
    expected = send_poison(conn, REQUESTS, {"request_id": "x", "task_request": {"name": ""}})
    rid = str(uuid.uuid4())
    send(conn, REQUESTS, request_body(rid))
    consumer = ingestion(db)
    assert await consumer(None, 10) == len(POISON) + 1
    assert_set_aside(conn, REQUESTS, expected)
    out = conn.execute("SELECT outcome FROM tasker.task_request_outcomes WHERE request_id = %s",
                       (rid,)).fetchone()
    assert out is not None and out["outcome"] == "created"
    assert left_on(conn, REQUESTS) == []
    assert consumer.counters.set_aside == len(POISON)
    assert consumer.counters.processed == 1 and consumer.counters.failed == 0


async def test_step_results(db: Database, conn: DictConn, db_url: str) -> None:
    await create_task(db, conn)
    [step] = await claim(db)
    unknown = {"task_uuid": str(uuid.uuid4()), "step_uuid": str(uuid.uuid4()),
               "correlation_id": str(uuid.uuid4())}
    expected = send_poison(conn, RESULTS, unknown)
    expected[send(conn, RESULTS, json.dumps(unknown))] = f"unknown step {unknown['step_uuid']}"
    # a failure: its result message goes to result processing, behind the poison
    assert await record(db, [step], success=False) == ["recorded"]
    handlers = ResultHandlers(processor_uuid=uuid.uuid4(), settings=service_settings(db_url))
    consumer = processor(db, RESULTS, decode_step_message, handlers.handle_step_results,
                         lock_result_messages)
    assert await consumer(None, 20) == len(expected) + 1
    assert_set_aside(conn, RESULTS, expected)
    assert handlers.applied == 1
    state = conn.execute("SELECT tasker.get_current_step_state_v1(%s) AS s",
                         (step.step_uuid,)).fetchone()
    assert state is not None and state["s"] == "error"  # not retryable
    assert left_on(conn, RESULTS) == []
    assert consumer.counters.set_aside == len(expected)


async def test_task_finalizations(db: Database, conn: DictConn) -> None:
    task = await create_task(db, conn)
    missing = str(uuid.uuid4())
    expected = send_poison(conn, FINALIZATIONS, {"task_uuid": missing})
    expected[send(conn, FINALIZATIONS, json.dumps({"task_uuid": missing}))] = (
        f"unknown task {missing}")
    send(conn, FINALIZATIONS, json.dumps({"task_uuid": str(task), "reason": "test"}))
    handlers = FinalizerHandlers(processor_uuid=uuid.uuid4())
    consumer = processor(db, FINALIZATIONS, decode_finalization_request,
                         handlers.handle_finalizations, lock_finalization_messages)
    assert await consumer(None, 20) == len(expected) + 1
    assert_set_aside(conn, FINALIZATIONS, expected)
    assert left_on(conn, FINALIZATIONS) == []
    assert consumer.counters.set_aside == len(expected)
    assert consumer.counters.processed == 1 and consumer.counters.failed == 0


@pytest.mark.parametrize(("headers", "reason"), [
    ('{"traceparent": ' + UNDECODABLE + "}",
     "undecodable headers: JSON nested too deeply to decode"),
    ('{"h": ' + TOO_DEEP + "}", "undecodable headers: nested deeper than 64 levels"),
])
async def test_worker_queue_step_message_with_poison_headers(
        db: Database, conn: DictConn, headers: str, reason: str) -> None:
    """The worker claims the step, sets the message aside and puts a clean one in its place
    (invisible while the step runs, deleted when its result is recorded); the message behind
    it is claimed in the same call."""
    await create_task(db, conn, 2)
    await create_task(db, conn, 4)
    first, second = left_on(conn, WORKER_QUEUE)
    conn.execute(f"UPDATE pgmq.q_{WORKER_QUEUE} SET headers = %s::jsonb WHERE msg_id = %s",
                 (headers, first))
    steps = await claim(db)
    assert len(steps) == 2
    replaced = steps[0]
    assert replaced.msg_id not in (first, second) and replaced.headers is None
    assert steps[1].msg_id == second
    assert_set_aside(conn, WORKER_QUEUE, {first: reason}, read_ct=1)  # read by the claim
    row = conn.execute(f"SELECT message, headers, read_ct, vt > clock_timestamp() AS hidden"
                       f" FROM pgmq.q_{WORKER_QUEUE} WHERE msg_id = %s",
                       (replaced.msg_id,)).fetchone()
    assert row is not None and row["headers"] is None and row["hidden"]
    assert row["read_ct"] == 1  # the read count carries over
    assert row["message"]["step_uuid"] == str(replaced.step_uuid)
    assert await record(db, steps) == ["recorded", "recorded"]
    # both messages are gone; the records enqueued each task's next step
    assert not {replaced.msg_id, second} & set(left_on(conn, WORKER_QUEUE))
    assert len(left_on(conn, WORKER_QUEUE)) == 2


async def test_pipeline_keeps_flowing_past_poison_on_every_queue(
        pipeline: str, conn: DictConn) -> None:
    """All services running: poison ahead of a task on every orchestration queue and on the
    worker queue; the task completes and every poison message is set aside."""
    shaped = {"request_id": "x", "task_uuid": str(uuid.uuid4()),
              "step_uuid": str(uuid.uuid4()), "correlation_id": str(uuid.uuid4())}
    expected = {queue: send_poison(conn, queue, shaped)
                for queue in (REQUESTS, RESULTS, FINALIZATIONS)}
    expected[WORKER_QUEUE] = {
        send(conn, WORKER_QUEUE, UNDECODABLE): "undecodable step message",
        send(conn, WORKER_QUEUE, '{"task_uuid": 1}', '{"h": ' + UNDECODABLE + "}"):
            "undecodable step message"}
    rid = submit(pipeline, "linear_workflow", {"even_number": 2})
    with trio.fail_after(30):
        while True:
            row = conn.execute("SELECT task_uuid FROM tasker.task_request_outcomes"
                               " WHERE request_id = %s", (rid,)).fetchone()
            if row is not None:
                break
            await trio.sleep(0.05)
    state = await trio.to_thread.run_sync(wait_task, pipeline, row["task_uuid"])
    assert state == "complete"
    for queue, reasons in expected.items():
        assert_set_aside(conn, queue, reasons)
