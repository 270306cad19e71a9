"""The worker service: registers its templates, then claims and runs steps from the queues
of its namespaces."""

from __future__ import annotations

import importlib
import os
import socket
from collections.abc import Callable
from dataclasses import asdict

import trio

from tasker_shared.contracts.queues import worker_queue
from tasker_shared.domain.template import TaskTemplate
from tasker_shared.runtime.service import Runtime, service_runtime
from tasker_shared.runtime.settings import Settings
from tasker_shared.templates_io import load_templates
from tasker_worker.events.router import DomainEventRouter
from tasker_worker.runtime.dispatcher import Dispatcher
from tasker_worker.runtime.executor import StepExecutor
from tasker_worker.runtime.handler_check import check_at_start
from tasker_worker.runtime.templates import WorkerTemplates
from tasker_worker.sdk.handlers import HandlerRegistry, default_registry


def import_handler_modules(modules: list[str]) -> None:
    """Import the modules that define (and register) the worker's handlers."""
    for name in modules:
        importlib.import_module(name)


async def serve(
    settings: Settings,
    *,
    on_runtime: Callable[[Runtime], None] | None = None,
    registry: HandlerRegistry | None = None,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    ws = settings.worker
    import_handler_modules(ws.handler_modules)
    templates: list[TaskTemplate] = load_templates(ws.template_paths) if ws.template_paths else []
    async with service_runtime("worker", settings) as rt:
        if on_runtime is not None:
            on_runtime(rt)
        check_at_start(registry or default_registry, templates,
                       environment=settings.environment, mode=ws.handler_check)
        worker_id = ws.worker_id or f"{socket.gethostname()}-{os.getpid()}"
        rt.instance_id = worker_id
        known = WorkerTemplates(rt.db, environment=settings.environment)
        await known.register_all(templates)
        namespaces = sorted(set(ws.namespaces) | known.namespaces)
        for namespace in namespaces:
            await rt.db.execute("SELECT tasker.ensure_queue_v1(%s)", (worker_queue(namespace),))
        qs = settings.queues
        executor = StepExecutor(db=rt.db, registry=registry or default_registry,
                                templates=known, settings=ws, worker_id=worker_id,
                                lease_seconds=qs.visibility_timeout_seconds)
        events = DomainEventRouter(worker_id=worker_id, max_bytes=ws.max_result_bytes)
        rt.routes["/metrics/events"] = events.stats  # tasker-core's DomainEventStats
        dispatcher = Dispatcher(db=rt.db, executor=executor, capacity=ws.max_concurrent_handlers,
                                visibility_seconds=qs.visibility_timeout_seconds,
                                worker_id=worker_id, max_reads=qs.max_read_count,
                                batch_size=qs.batch_size,
                                retry_pause_seconds=min(1.0, qs.poll_interval_ms / 1000.0),
                                max_result_bytes=ws.max_result_bytes, events=events)
        for namespace in namespaces:
            rt.add_consumer(dispatcher.consumer(worker_queue(namespace), qs))
        rt.add_drainable(dispatcher)
        rt.extra_details.append(lambda: {
            "worker": {"worker_id": worker_id, "namespaces": namespaces,
                       "completed": executor.completed, "failed": executor.failed,
                       "stale": executor.stale, **asdict(dispatcher.statistics())}})
        await rt.run(task_status=task_status)
