"""Every gateway call, declared once; a client class adds a facade that says how calls run."""

from __future__ import annotations

from tasker_client.calls import admin, batch, steps, tasks
from tasker_client.config import ClientConfig, RetryPolicy, resolve_config
from tasker_client.core import Connection
from tasker_client.facade import Streaming, Unary


class GatewayCalls:
    """The gateway API. Methods are awaitables on async clients and blocking on the sync one.

    Address and credentials come from the arguments, else the TASKER_* environment (see
    `tasker_client.config.resolve_config`); `config` replaces all of them.
    """

    def __init__(
        self,
        address: str | None = None,
        *,
        token: str | None = None,
        api_key: str | None = None,
        api_key_header: str | None = None,
        timeout: float | None = 30.0,
        retry: RetryPolicy | None = None,
        config: ClientConfig | None = None,
    ) -> None:
        self._connection = Connection(config or resolve_config(
            address, token=token, api_key=api_key, api_key_header=api_key_header,
            timeout=timeout, retry=retry,
        ))
        self._started()

    def _started(self) -> None:
        """Called once the connection is configured (a facade may start its machinery)."""

    @property
    def config(self) -> ClientConfig:
        """The resolved address, credentials, timeout and retry policy."""
        return self._connection.config

    create_task = Unary(tasks.create_task)
    create_tasks = Unary(batch.create_tasks)
    create_tasks_concurrently = Unary(batch.create_tasks_concurrently)
    get_task = Unary(tasks.get_task)
    list_tasks = Unary(tasks.list_tasks)
    cancel_task = Unary(tasks.cancel_task)
    get_task_context = Unary(tasks.get_task_context)
    get_task_summary = Unary(tasks.get_task_summary)
    get_task_request_outcome = Unary(tasks.get_task_request_outcome)
    watch_task = Streaming(tasks.watch_task)

    list_steps = Unary(steps.list_steps)
    get_step = Unary(steps.get_step)
    resolve_step = Unary(steps.resolve_step)
    step_audit = Unary(steps.step_audit)

    list_templates = Unary(steps.list_templates)
    get_template = Unary(steps.get_template)

    dlq_list = Unary(admin.dlq_list)
    dlq_get = Unary(admin.dlq_get)
    dlq_update = Unary(admin.dlq_update)
    dlq_stats = Unary(admin.dlq_stats)
    dlq_investigation_queue = Unary(admin.dlq_investigation_queue)
    dlq_staleness = Unary(admin.dlq_staleness)

    performance = Unary(admin.performance)
    bottlenecks = Unary(admin.bottlenecks)
    health = Unary(admin.health)
    readiness = Unary(admin.readiness)
    detailed_health = Unary(admin.detailed_health)
