"""The orchestration services and one worker as tasks of a test, over templates written for
it (worker runtime tests)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import trio

from tasker_finalizer.service import serve as serve_finalizer
from tasker_ingestion.service import serve as serve_ingestion
from tasker_results.service import serve as serve_results
from tasker_worker.service import serve as serve_worker
from tests.support import service_settings

HANDLERS = "tests.e2e.worker_handlers"


@asynccontextmanager
async def services_with_worker(url: str, templates: Path, namespaces: list[str], *,
                               worker: Mapping[str, Any] | None = None,
                               **overrides: Any) -> AsyncIterator[str]:
    """Ingestion, results, finalizer and a worker (handlers of `tests.e2e.worker_handlers`,
    the templates in `templates`) running until the block ends; yields the database URL."""
    settings = service_settings(
        url, worker={"namespaces": namespaces, "handler_modules": [HANDLERS],
                     "template_paths": [str(templates)], **(worker or {})}, **overrides)
    async with trio.open_nursery() as nursery:
        for serve in (serve_ingestion, serve_results, serve_finalizer, serve_worker):
            await nursery.start(serve, settings)
        yield url
        nursery.cancel_scope.cancel()
