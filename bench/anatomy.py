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
per queue operation, so the anatomy runs after the measured workloads. A listener of the
benchmark's own (`NotificationClock`) notes when each queue NOTIFY arrives (`notify_split`):
that splits a wake-up hop into the sender's rest of transaction + commit + NOTIFY delivery,
and the consumer's own way from the NOTIFY to its transaction (the outside listener is one
more process woken on this host: read its times to a millisecond or so).
"""

from __future__ import annotations

import json
import re
import statistics
import threading
import time
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

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


def commit_probe(conn: psycopg.Connection[Any]) -> tuple[float, float]:
    """ms of a one-row insert committed waiting for the WAL flush, and without (autocommit
    connection): the flush wait at this moment on this server, for reading the hops."""
    conn.execute("CREATE TABLE IF NOT EXISTS bench_anatomy.probe (at timestamptz)")
    out = []
    for mode in ("on", "off"):
        conn.execute("SELECT set_config('synchronous_commit', %s, false)", (mode,))
        t0 = time.perf_counter()
        conn.execute("INSERT INTO bench_anatomy.probe VALUES (clock_timestamp())")
        out.append((time.perf_counter() - t0) * 1000)  # one round trip included
    conn.execute("SELECT set_config('synchronous_commit', 'on', false)")
    return out[0], out[1]


class NotificationClock:
    """LISTENs on queue channels in a thread; `heard[(channel, msg_id)]` is when (epoch
    seconds) the NOTIFY of that message arrived here."""

    def __init__(self, url: str, channels: list[str]) -> None:
        self.heard: dict[tuple[str, int], float] = {}
        self._conn = psycopg.connect(url, autocommit=True)
        for channel in channels:
            self._conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for note in self._conn.notifies(timeout=0.1):
                at = time.time()
                try:
                    msg_id = int(json.loads(note.payload)["msg_id"])
                except (ValueError, KeyError, TypeError):
                    continue
                self.heard.setdefault((note.channel, msg_id), at)

    def __enter__(self) -> NotificationClock:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._conn.close()


def queue_channels(conn: psycopg.Connection[Any]) -> list[str]:
    """The NOTIFY channel of every queue (tasker.queue_channel_v1)."""
    rows = conn.execute("SELECT tasker.queue_channel_v1(queue_name) FROM pgmq.meta").fetchall()
    return [str(channel) for (channel,) in rows]


# The messages sent for one task (request, worker queue) with the queue's NOTIFY channel.
_SENT = """
SELECT tasker.queue_channel_v1(substring(l.queue FROM 3)), l.msg_id,
       substring(ns.name FROM '[0-9]+$')::int
  FROM bench_anatomy.message_log l
  JOIN tasker.workflow_steps ws ON l.message ->> 'step_uuid' = ws.workflow_step_uuid::text
  JOIN tasker.named_steps ns ON ns.named_step_uuid = ws.named_step_uuid
 WHERE ws.task_uuid = %(task)s AND l.op = 'INSERT' AND l.queue LIKE 'q\\_worker\\_%%'
UNION ALL
SELECT tasker.queue_channel_v1(substring(l.queue FROM 3)), l.msg_id, NULL
  FROM bench_anatomy.message_log l
 WHERE l.queue = 'q_orchestration_task_requests' AND l.op = 'INSERT'
   AND l.message ->> 'request_id' = %(rid)s"""


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
SELECT 'completing tx start', NULL, tt.created_at FROM tasker.task_transitions tt
 WHERE tt.task_uuid = %(task)s AND tt.to_state = 'complete'
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

# The causal chain of a linear-4 task as the services are built today, and what each hop
# (from the event before in this chain) is made of. The hops printed follow the events' median
# times instead, so a changed path (an event gone, or moved) shows as it is.
_HEAD = [
    ("gateway stamped request", "client -> gateway: gRPC call, decode, validate"),
    ("request message sent", "gateway: checks, encode, begin + send"),
    ("ingestion tx start", "request commit -> NOTIFY -> ingestion wakes, begins"),
    ("task created", "ingestion: lock request, template, insert task"),
]
_STEP = [
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
    ("completing tx start", "commit -> NOTIFY -> finalizer begins"),
    ("task complete written", "finalizer: evaluate, transitions"),
    ("finalizer tx end", "finalizer: delete message (then commit)"),
]


def chain(steps: int = 4) -> list[tuple[str, str]]:
    """(event, what the hop into it from the event before is made of), in causal order."""
    out = list(_HEAD)
    for k in range(1, steps + 1):
        if k == 1:
            out += [("step 1: enqueued", "ingestion: steps, edges, enqueue the first step"),
                    ("ingestion tx end", "ingestion: task transitions, outcome, delete request")]
        else:
            out += [(f"step {k}: enqueued", "result processing: evaluate, enqueue the next step"),
                    (f"step {k - 1}: results tx end", "result processing: delete result message")]
        out += [(f"step {k}: {event}", what) for event, what in _STEP]
    return out + _TAIL


def task_events(conn: psycopg.Connection[Any], *, rid: str, task: str, client: bool,
                clock: NotificationClock | None = None) -> dict[str, float]:
    """Event name -> epoch seconds for one finished linear-4 task."""
    params = {"rid": rid, "task": task, "client": client}
    rows = conn.execute(_EVENTS, params).fetchall()
    out: dict[str, float] = {}
    for event, step, at in rows:
        if at is None or event is None:
            continue
        out[event if step is None else f"step {step}: {event}"] = at.timestamp()
    if clock is not None:
        for channel, msg_id, step in conn.execute(_SENT, params).fetchall():
            heard = clock.heard.get((channel, msg_id))
            if heard is not None:
                out[f"request {HEARD}" if step is None else f"step {step}: {HEARD}"] = heard
    return out


@dataclass(frozen=True, kw_only=True, slots=True)
class Hop:
    event: str  # the event the hop leads to ("a = b" when both happen at one time)
    what: str  # what the hop is made of, when it follows the chain above; else "a -> b"
    ms: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.ms)


HEARD = "NOTIFY heard"  # NotificationClock's events: beside the chain, not in it


def notify_split(runs: list[tuple[float, dict[str, float]]]
                 ) -> dict[str, tuple[float, float]] | None:
    """Where an outside listener heard each NOTIFY: median ms from the sender's last write
    we see (the request sent; a step enqueued) to the NOTIFY's arrival, and from the arrival
    to the consumer's transaction start (negative: it began before the outside listener
    heard), for the request and for the steps' worker messages."""
    pairs = {"request": ("request message sent", f"request {HEARD}", "ingestion tx start")}
    pairs |= {f"step {k}": (f"step {k}: enqueued", f"step {k}: {HEARD}",
                            f"step {k}: claim tx start") for k in range(1, 5)}
    out: dict[str, tuple[float, float]] = {}
    for name, (sent, heard, began) in pairs.items():
        if all(sent in ev and heard in ev and began in ev for _, ev in runs) and runs:
            out[name] = (statistics.median((ev[heard] - ev[sent]) * 1000 for _, ev in runs),
                         statistics.median((ev[began] - ev[heard]) * 1000 for _, ev in runs))
    return out or None


def hops(runs: list[tuple[float, dict[str, float]]]) -> list[Hop]:
    """The hops of the tasks in `runs` (per task: its submit time and its events), from the
    submit call on. Only events every task has count; events at one same time in most tasks
    (rows of one transaction's start) are one, timed by the first in chain order; they follow
    their median times (ties in chain order); a hop between events the chain does not put
    next to each other is named by its ends."""
    order = [event for event, _ in chain()]
    made_of = dict(chain())
    events = [e for e in order if all(e in ev for _, ev in runs)]
    events += sorted({e for _, ev in runs for e in ev if e not in made_of
                      and not e.endswith(HEARD) and all(e in other for _, other in runs)})
    groups: list[list[str]] = []
    for event in events:
        same = next((g for g in groups
                     if 2 * sum(ev[g[0]] == ev[event] for _, ev in runs) > len(runs)), None)
        if same is not None:
            same.append(event)
        else:
            groups.append([event])

    def offset(group: list[str]) -> float:
        return statistics.median(ev[group[0]] - t0 for t0, ev in runs)

    rank = {e: i for i, e in enumerate(order)}
    groups.sort(key=lambda g: (offset(g), min(rank.get(e, len(order)) for e in g)))
    out: list[Hop] = []
    previous: list[str] = []
    for group in groups:
        ms = [(ev[group[0]] - (ev[previous[0]] if previous else t0)) * 1000 for t0, ev in runs]
        out.append(Hop(event=" = ".join(group), what=_made_of(previous, group, events),
                       ms=ms))
        previous = group
    return out


def _made_of(previous: list[str], group: list[str], present: list[str]) -> str:
    """The chain's description of the hop into `group` when it comes from the event the
    chain has just before (among the events present), else the hop's ends."""
    made_of = dict(chain())
    if not previous:  # from the submit call: to the gateway, or the submitter's own send
        first = _HEAD[0][0]
        return made_of[first] if first in group else "submit call: begin + send"
    order = [e for e, _ in chain() if e in present]
    for event in group:
        if event not in made_of:
            continue
        i = order.index(event)
        if i > 0 and order[i - 1] in previous:
            return made_of[event]
    return f"{previous[-1]} -> {group[0]}"


def grouped(hop_list: list[Hop]) -> list[tuple[str, float]]:
    """Median ms per kind of hop (summed over the task's steps), largest first."""
    sums: dict[str, float] = {}
    for hop in hop_list:
        kind = re.sub(r"step \d+: ", "", hop.what)
        sums[kind] = sums.get(kind, 0.0) + hop.median
    return sorted(sums.items(), key=lambda kv: -kv[1])
