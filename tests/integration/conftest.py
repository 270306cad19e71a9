"""Fixtures of the integration tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import trio

from tasker_finalizer.service import serve as serve_finalizer
from tasker_ingestion.service import serve as serve_ingestion
from tasker_results.service import serve as serve_results
from tasker_worker.examples import templates_dir
from tasker_worker.service import serve as serve_worker
from tests.support import EXAMPLES, service_settings


@pytest.fixture
async def pipeline(db_url: str) -> AsyncIterator[str]:
    """Ingestion, results, finalizer and a worker (sample handlers) as tasks of this test."""
    settings = service_settings(db_url, worker={
        "namespaces": ["examples"], "handler_modules": [EXAMPLES],
        "template_paths": [str(templates_dir())]})
    async with trio.open_nursery() as nursery:
        for serve in (serve_ingestion, serve_results, serve_finalizer, serve_worker):
            await nursery.start(serve, settings)
        yield db_url
        nursery.cancel_scope.cancel()
