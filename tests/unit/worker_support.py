"""Stand-ins shared by the worker's pure-logic tests."""

from __future__ import annotations

import uuid

from tasker_worker.runtime.claims import ClaimedStep


def claimed_step(queue: str, msg_id: int) -> ClaimedStep:
    """A claimed step of `queue` under message `msg_id` (what the scheduler hands over)."""
    ids = uuid.uuid4()
    return ClaimedStep(queue=queue, msg_id=msg_id, task_uuid=ids, step_uuid=uuid.uuid4(),
                       correlation_id=ids, step_name="s", attempt=1, max_attempts=1, inputs={},
                       checkpoint=None, task_context={}, namespace=queue, task_name="t",
                       task_version="1", named_task_uuid=ids, dependency_results={},
                       headers=None)
