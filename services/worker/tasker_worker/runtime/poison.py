"""Claimed steps whose queue message the worker cannot use (PGMQ headers undecodable or
nested too deep, `tasker_shared.queue.poison`): the message is set aside with its reason and
replaced by a clean one (`tasker.replace_poison_step_message_v1`), and the step runs.

The claim SQL already sets aside a message whose body names no step; a body that names one
is only read by the database (its step_uuid), so headers are all a worker has to check."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import structlog

from tasker_shared.db.database import Conn
from tasker_shared.queue import poison
from tasker_shared.runtime.metrics import MESSAGES_SET_ASIDE

if TYPE_CHECKING:
    from tasker_worker.runtime.claims import ClaimedStep

log = structlog.get_logger("tasker.worker")


def replace_poison_messages(
    conn: Conn, steps: list[ClaimedStep], *, visibility_seconds: float
) -> list[ClaimedStep]:
    """`steps` with each one whose message is poison moved onto a clean message (its id,
    no headers); run on the claiming connection, after the claim (autocommit)."""
    out: list[ClaimedStep] = []
    for step in steps:
        problem = poison.headers_problem(step.headers)
        if problem is None:
            out.append(step)
            continue
        row = conn.execute(
            "SELECT tasker.replace_poison_step_message_v1(%s::text, %s::bigint, %s::text,"
            " %s::uuid, %s::uuid, %s::uuid, %s::numeric) AS msg_id",
            (step.queue, step.msg_id, problem, step.task_uuid, step.step_uuid,
             step.correlation_id, visibility_seconds),
        ).fetchone()
        new_id = row["msg_id"] if row else None
        MESSAGES_SET_ASIDE.labels(step.queue, poison.UNDECODABLE).inc()
        log.warning("message_set_aside", queue=step.queue, msg_id=step.msg_id,
                    replaced_by=new_id, step_uuid=str(step.step_uuid), reason=problem)
        out.append(replace(step, msg_id=step.msg_id if new_id is None else int(new_id),
                           headers=None))
    return out
