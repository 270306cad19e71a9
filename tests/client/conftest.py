"""The real gateway and pipeline in one Trio run, on free loopback ports, for client tests."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
import trio
from psycopg.rows import dict_row

from tasker_finalizer.service import serve as serve_finalizer
from tasker_gateway.service import serve as serve_gateway
from tasker_ingestion.service import serve as serve_ingestion
from tasker_results.service import serve as serve_results
from tasker_shared.runtime.settings import Settings
from tasker_shared.store.templates import register_template
from tasker_shared.templates_io import load_templates
from tasker_worker.examples import templates_dir
from tasker_worker.service import serve as serve_worker
from tests.support import EXAMPLES, service_settings

LINEAR = {"name": "linear_workflow", "namespace": "examples", "version": "1.0.0"}


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True, kw_only=True, slots=True)
class Stack:
    """A running gateway (and pipeline) and how to reach it."""

    url: str
    address: str
    settings: Settings


StackFactory = Callable[..., AbstractAsyncContextManager[Stack]]


def register_examples(url: str) -> None:
    """Register the sample templates the way `tasker template register` does."""
    with psycopg.connect(url, row_factory=dict_row) as conn:
        for template in load_templates([templates_dir()]):
            register_template(conn, template)


@pytest.fixture
def start_stack(db_url: str) -> StackFactory:
    """`async with start_stack(worker=..., ingestion=..., grpc_port=..., **overrides) as s:`."""

    @asynccontextmanager
    async def start(*, worker: bool = True, ingestion: bool = True,
                    grpc_port: int | None = None, **overrides: Any) -> AsyncIterator[Stack]:
        port = grpc_port or free_port()
        gateway = {"grpc_host": "127.0.0.1", "grpc_port": port, "rest_host": "127.0.0.1",
                   "rest_port": free_port(), **overrides.pop("gateway", {})}
        settings = service_settings(db_url, gateway=gateway, worker={
            "namespaces": ["examples"], "handler_modules": [EXAMPLES],
            "template_paths": [str(templates_dir())]}, **overrides)
        if not worker:
            await trio.to_thread.run_sync(register_examples, db_url)
        services: list[Any] = [serve_results, serve_finalizer, serve_gateway]
        if ingestion:
            services.insert(0, serve_ingestion)
        if worker:
            services.append(serve_worker)
        async with trio.open_nursery() as nursery:
            for serve in services:
                await nursery.start(serve, settings)
            yield Stack(url=db_url, address=f"127.0.0.1:{port}", settings=settings)
            nursery.cancel_scope.cancel()

    return start


@pytest.fixture
async def stack(start_stack: StackFactory) -> AsyncIterator[Stack]:
    """The whole pipeline with a worker for the `examples` namespace."""
    async with start_stack() as running:
        yield running


@pytest.fixture
async def idle_stack(start_stack: StackFactory) -> AsyncIterator[Stack]:
    """Gateway and orchestration but no worker: tasks stay in progress."""
    async with start_stack(worker=False) as running:
        yield running


@pytest.fixture
def wide_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rich tables wide enough that UUIDs are not folded in captured output."""
    monkeypatch.setenv("COLUMNS", "250")
    for name in ("TASKER_GATEWAY_ADDRESS", "TASKER_ORCHESTRATION_AUTH_TOKEN",
                 "TASKER_AUTH_TOKEN", "TASKER_API_KEY", "TASKER_API_KEY_HEADER"):
        monkeypatch.delenv(name, raising=False)
