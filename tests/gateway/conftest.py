"""Gateway test harness: the gateway (and the services it needs) in-process on free ports,
an HTTP client, and a grpclib client driven from Trio through trio-asyncio."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import grpclib.client
import httpx
import psycopg
import pytest
import trio
import trio_asyncio
from grpclib.const import Cardinality
from psycopg.rows import dict_row
from trio_asyncio import aio_as_trio

from tasker_finalizer.service import serve as serve_finalizer
from tasker_gateway.context import GatewayContext
from tasker_gateway.service import serve as serve_gateway
from tasker_ingestion.service import serve as serve_ingestion
from tasker_results.service import serve as serve_results
from tasker_shared.contracts.generated.tasker import v1 as pb
from tasker_shared.domain.template import parse_template_text
from tasker_shared.runtime.service import Runtime
from tasker_shared.runtime.settings import Settings
from tasker_shared.store.templates import register_template
from tasker_worker.examples import templates_dir
from tasker_worker.service import serve as serve_worker
from tests.browser_support import chromium
from tests.support import EXAMPLES, service_settings

LINEAR = {"name": "linear_workflow", "namespace": "examples", "version": "1.0.0",
          "context": {"even_number": 2}}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def register_examples(db_url: str) -> None:
    with psycopg.connect(db_url, row_factory=dict_row) as conn:
        for path in sorted(templates_dir().glob("*.yaml")):
            register_template(conn, parse_template_text(path.read_text(), source=str(path)))
        conn.commit()


def gateway_settings(db_url: str, *, gateway: dict[str, Any] | None = None,
                     **overrides: Any) -> Settings:
    gw = {"rest_host": "127.0.0.1", "rest_port": free_port(), "grpc_host": "127.0.0.1",
          "grpc_port": free_port(), "create_wait_timeout_seconds": 5.0,
          "backpressure_refresh_seconds": 0.2, "analytics_cache_seconds": 0.0}
    gw.update(gateway or {})
    worker = {"namespaces": ["examples"], "handler_modules": [EXAMPLES],
              "template_paths": [str(templates_dir())]}
    return service_settings(db_url, gateway=gw, worker=worker, **overrides)


@dataclass
class Gateway:
    settings: Settings
    db_url: str
    ctx: GatewayContext
    runtime: Runtime
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.settings.gateway.rest_port}"

    @property
    def grpc_port(self) -> int:
        return self.settings.gateway.grpc_port

    def http(self, **kwargs: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, timeout=20, **kwargs)

    def sql(self, query: str, params: Any = ()) -> list[dict[str, Any]]:
        with psycopg.connect(self.db_url, autocommit=True, row_factory=dict_row) as conn:
            cur = conn.execute(query, params)
            return cur.fetchall() if cur.description else []


@asynccontextmanager
async def running_gateway(db_url: str, *, pipeline: bool = False, ingestion: bool = True,
                          settings: Settings | None = None, **kwargs: Any
                          ) -> AsyncIterator[Gateway]:
    """The gateway (plus ingestion, plus results/finalizer/worker with `pipeline`)."""
    settings = settings or gateway_settings(db_url, **kwargs)
    register_examples(db_url)
    holder: dict[str, Any] = {}
    async with trio.open_nursery() as nursery:
        services = [serve_ingestion] if ingestion else []
        if pipeline:
            services += [serve_results, serve_finalizer, serve_worker]
        for serve in services:
            await nursery.start(serve, settings)
        await nursery.start(partial(serve_gateway, settings,
                                    on_runtime=lambda rt: holder.setdefault("rt", rt),
                                    on_context=lambda ctx: holder.setdefault("ctx", ctx)))
        yield Gateway(settings=settings, db_url=db_url, ctx=holder["ctx"], runtime=holder["rt"])
        nursery.cancel_scope.cancel()


@pytest.fixture
async def gw(db_url: str) -> AsyncIterator[Gateway]:
    async with running_gateway(db_url) as gateway:
        yield gateway


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A headless Chromium (see tests/browser_support.py), one per test module."""
    with chromium(tmp_path_factory.mktemp("chromium")) as driver:
        yield driver


@pytest.fixture
async def pipeline_gw(db_url: str) -> AsyncIterator[Gateway]:
    async with running_gateway(db_url, pipeline=True) as gateway:
        yield gateway


class Rpc:
    """grpclib stubs of tasker.v1 plus a generic caller, usable from Trio."""

    def __init__(self, channel: grpclib.client.Channel) -> None:
        self.channel = channel
        self.tasks = pb.TaskServiceStub(channel)
        self.steps = pb.StepServiceStub(channel)
        self.templates = pb.TemplateServiceStub(channel)
        self.health = pb.HealthServiceStub(channel)
        self.analytics = pb.AnalyticsServiceStub(channel)
        self.dlq = pb.DlqServiceStub(channel)
        self.config = pb.ConfigServiceStub(channel)

    async def __call__(self, method: Callable[..., Any], request: Any, **kwargs: Any) -> Any:
        return await aio_as_trio(method)(request, **kwargs)

    async def stream(self, method: Callable[..., Any], request: Any, **kwargs: Any
                     ) -> list[Any]:
        async def collect() -> list[Any]:
            return [item async for item in method(request, **kwargs)]

        return await aio_as_trio(collect)()

    async def raw(self, name: str, cardinality: Cardinality, request: Any, reply_type: Any,
                  metadata: dict[str, str] | None = None) -> Any:
        """Call `name` without a stub (for tables of methods)."""
        async def go() -> Any:
            async with self.channel.request(name, cardinality, type(request), reply_type,
                                            metadata=metadata, timeout=10) as stream:
                await stream.send_message(request, end=True)
                replies = [reply async for reply in stream]
                return replies

        return await aio_as_trio(go)()


@asynccontextmanager
async def grpc_client(port: int) -> AsyncIterator[Rpc]:
    async with trio_asyncio.open_loop():
        channel = grpclib.client.Channel("127.0.0.1", port)
        try:
            yield Rpc(channel)
        finally:
            channel.close()
