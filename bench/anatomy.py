"""Latency anatomy of an idle linear-4 task: every hop from the submit call to the finalized
task, in ms, from the timestamps the database keeps.

Task and step transitions carry two times: `created_at` (now(): the start of the transaction
that wrote them) and `metadata.timestamp` (clock_timestamp(): the moment of the write). The
request outcome's `recorded_at` is ingestion's transaction start, `tasks.requested_at` the
moment the gateway stamped the request. Queue messages are deleted when consumed, so for the
anatomy the benchmark's own database gets a trigger on every PGMQ queue table that notes each
message's insert, read and delete with clock_timestamp() (`install_message_log`): that gives
the moment a request was sent and the last write of each consuming transaction (its delete
of the message, just before its commit). The trigger adds one insert into an unlogged table
per queue operation, so the anatomy runs after the measured workloads.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

import psycopg

_LOG = """
CREATE SCHEMA IF NOT EXISTS bench_anatomy;
CREATE UNLOGGED TABLE IF NOT EXISTS bench_anatomy.message_log (
    queue text NOT NULL, op text NOT NULL, msg_id bigint NOT NULL,
    at timestamptz NOT NULL DEFAULT clock_timestamp(), message jsonb NOT NULL);
CREATE OR REPLACE FUNCTION bench_anatomy.note() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        INSERT INTO bench_anatomy.message_log (queue, op, msg_id, message)
        VALUES (TG_TABLE_NAME, TG_OP, OLD.msg_id, OLD.message);
    ELSE
        INSERT INTO bench_anatomy.message_log (queue, op, msg_id, message)
        VALUES (TG_TABLE_NAME, TG_OP, NEW.msg_id, NEW.message);
    END IF;
    RETURN NULL;
END $$"""


def install_message_log(conn: psycopg.Connection[Any]) -> None:
    """Note every insert / read / delete of every PGMQ queue table (see the docstring)."""
    conn.execute(_LOG)
    tables = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'pgmq'"
                          " AND tablename LIKE 'q\\_%'").fetchall()
    for (table,) in tables:
        conn.execute(f'CREATE OR REPLACE TRIGGER bench_anatomy AFTER INSERT OR UPDATE OR DELETE'
                     f' ON pgmq."{table}" FOR EACH ROW EXECUTE FUNCTION bench_anatomy.note()')


_EVENTS = """
SELECT 'request message sent' AS event, NULL::int AS step, min(l.at) AS at
  FROM bench_anatomy.message_log l
 WHERE l.queue = 'q_orchestration_task_requests' AND l.op = 'INSERT'
   AND l.message ->> 'request_id' = %(rid)s
UNION ALL
SELECT 'ingestion tx end', NULL, max(l.at) FROM bench_anatomy.message_log l
 WHERE l.queue = 'q_orchestration_task_requests' AND l.op = 'DELETE'
   AND l.message ->> 'request_id' = %(rid)s
UNION ALL
SELECT 'gateway stamped request', NULL, t.requested_at FROM tasker.tasks t
 WHERE t.task_uuid = %(task)s AND %(client)s
UNION ALL
SELECT 'ingestion tx start', NULL, o.recorded_at FROM tasker.task_request_outcomes o
 WHERE o.request_id = %(rid)s
UNION ALL
SELECT CASE tt.to_state WHEN 'pending' THEN 'task created'
                        WHEN 'complete' THEN 'task complete written' END,
       NULL, (tt.metadata ->> 'timestamp')::timestamptz
  FROM tasker.task_transitions tt
 WHERE tt.task_uuid = %(task)s AND tt.to_state IN ('pending', 'complete')
UNION ALL
SELECT 'finalizer tx start', NULL, tt.created_at FROM tasker.task_transitions tt
 WHERE tt.task_uuid = %(task)s AND tt.to_state = 'evaluating_results'
UNION ALL
SELECT 'finalization requested', NULL, min(l.at) FROM bench_anatomy.message_log l
 WHERE l.queue = 'q_orchestration_task_finalizations' AND l.op = 'INSERT'
   AND l.message ->> 'task_uuid' = %(task)s::text
UNION ALL
SELECT 'finalizer tx end', NULL, max(l.at) FROM bench_anatomy.message_log l
 WHERE l.queue = 'q_orchestration_task_finalizations' AND l.op = 'DELETE'
   AND l.message ->> 'task_uuid' = %(task)s::text
UNION ALL
SELECT e.event, s.k, e.at
  FROM (SELECT ws.workflow_step_uuid, ns.name,
               substring(ns.name FROM '[0-9]+$')::int AS k
          FROM tasker.workflow_steps ws
          JOIN tasker.named_steps ns ON ns.named_step_uuid = ws.named_step_uuid
         WHERE ws.task_uuid = %(task)s) s
  CROSS JOIN LATERAL (
      SELECT CASE st.to_state WHEN 'enqueued' THEN 'enqueued'
                              WHEN 'in_progress' THEN 'claimed'
                              WHEN 'enqueued_for_orchestration' THEN 'result recorded'
                              WHEN 'complete' THEN 'result applied' END AS event,
             (st.metadata ->> 'timestamp')::timestamptz AS at
        FROM tasker.workflow_step_transitions st
       WHERE st.workflow_step_uuid = s.workflow_step_uuid
         AND st.to_state IN ('enqueued', 'in_progress', 'enqueued_for_orchestration',
                             'complete')
      UNION ALL
      SELECT CASE st.to_state WHEN 'in_progress' THEN 'claim tx start'
                              WHEN 'enqueued_for_orchestration' THEN 'record tx start'
                              WHEN 'complete' THEN 'results tx start' END, st.created_at
        FROM tasker.workflow_step_transitions st
       WHERE st.workflow_step_uuid = s.workflow_step_uuid
         AND st.to_state IN ('in_progress', 'enqueued_for_orchestration', 'complete')
      UNION ALL
      SELECT CASE WHEN l.queue LIKE 'q\\_worker\\_%%' THEN 'record tx end'
                  ELSE 'results tx end' END, max(l.at)
        FROM bench_anatomy.message_log l
       WHERE l.op = 'DELETE' AND l.message ->> 'step_uuid' = s.workflow_step_uuid::text
         AND (l.queue LIKE 'q\\_worker\\_%%' OR l.queue = 'q_orchestration_step_results')
       GROUP BY 1) e"""

# The causal chain of a linear-4 task, and what each hop (from the event before) is made of.
_HEAD = [
    ("gateway stamped request", "client -> gateway: gRPC call, decode, validate"),
    ("request message sent", "gateway: checks, encode, begin + send"),
    ("ingestion tx start", "request commit -> NOTIFY -> ingestion wakes, begins"),
    ("task created", "ingestion: lock request, template, insert task"),
]
_STEP = [
    ("enqueued", "{enq}"),
    ("{prev_end}", "{end_what}"),
    ("claim tx start", "commit -> NOTIFY -> worker claim begins"),
    ("claimed", "claim: lock message, transition"),
    ("record tx start", "claim commit + hydrate, handler, hand-off to the recorder"),
    ("result recorded", "record: begin -> transition"),
    ("record tx end", "record: send result, delete message"),
    ("results tx start", "record commit -> NOTIFY -> result processing begins"),
    ("result applied", "result processing: lock, apply"),
]
_TAIL = [
    ("finalization requested", "result processing: evaluate, request finalization"),
    ("step 4: results tx end", "result processing: delete result message"),
    ("finalizer tx start", "commit -> NOTIFY -> finalizer begins"),
    ("task complete written", "finalizer: evaluate, transitions (completion = its tx start)"),
    ("finalizer tx end", "finalizer: delete message (then commit)"),
]


def chain(steps: int = 4) -> list[tuple[str, str]]:
    """(event, what the hop into it is made of), in causal order."""
    out = list(_HEAD)
    for k in range(1, steps + 1):
        for event, what in _STEP:
            if event == "{prev_end}":
                event = "ingestion tx end" if k == 1 else f"step {k - 1}: results tx end"
                what = ("ingestion: task transitions, outcome, delete request" if k == 1
                        else "result processing: delete result message")
            elif event == "enqueued":
                what = ("ingestion: steps, edges, enqueue the first step" if k == 1
                        else "result processing: evaluate, enqueue the next step")
            out.append((event if event.startswith(("ingestion", "step ")) else
                        f"step {k}: {event}", what))
    return out + _TAIL


def task_events(conn: psycopg.Connection[Any], *, rid: str, task: str, client: bool
                ) -> dict[str, float]:
    """Event name -> epoch seconds for one finished linear-4 task."""
    rows = conn.execute(_EVENTS, {"rid": rid, "task": task, "client": client}).fetchall()
    out: dict[str, float] = {}
    for event, step, at in rows:
        if at is None or event is None:
            continue
        out[event if step is None else f"step {step}: {event}"] = at.timestamp()
    return out


@dataclass(frozen=True, kw_only=True, slots=True)
class Hop:
    event: str
    what: str
    ms: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.ms)


def hops(runs: list[tuple[float, dict[str, float]]]) -> list[Hop]:
    """Hops along the chain, each with its duration in every run. `runs` holds, per task, the
    submit time and its events; an event a run lacks (no gateway on the queue path) is
    skipped: the next hop spans both."""
    out: list[Hop] = []
    per_run: list[list[float]] = [[] for _ in runs]
    names: list[tuple[str, str]] = []
    for event, what in chain():
        if not all(event in events for _, events in runs):
            continue
        names.append((event, what))
    for i, (t0, events) in enumerate(runs):
        prev = t0
        for event, _ in names:
            per_run[i].append((events[event] - prev) * 1000)
            prev = events[event]
    for j, (event, what) in enumerate(names):
        if j == 0 and event != _HEAD[0][0]:  # no gateway: the submitter sent it itself
            what = "submit call: begin + send"
        out.append(Hop(event=event, what=what, ms=[run[j] for run in per_run]))
    return out


def grouped(hop_list: list[Hop]) -> list[tuple[str, float]]:
    """Median ms per kind of hop (summed over the task's steps), largest first."""
    sums: dict[str, float] = {}
    for hop in hop_list:
        sums[hop.what] = sums.get(hop.what, 0.0) + hop.median
    return sorted(sums.items(), key=lambda kv: -kv[1])
