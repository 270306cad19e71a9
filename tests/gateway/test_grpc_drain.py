"""grpc.health.v1 over the official grpcio library: NOT_SERVING from the moment the gateway
drains (pushed to Watch streams, answered to Check) while the unary calls in flight finish,
and NOT_SERVING while the database is unreachable, as REST /health/ready answers 503."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
import psycopg
import trio
from grpclib.health.v1.health_pb2 import HealthCheckRequest, HealthCheckResponse

from tasker_gateway.grpc.server import GrpcServer
from tasker_shared.db.connect import with_database
from tests.gateway.conftest import Gateway, running_gateway
from tests.gateway.helpers import until
from tests.gateway.test_grpc_hostile import CREATE, LIST, create_request, message


def status_name(response: Any) -> str:
    return str(HealthCheckResponse.ServingStatus.Name(response.status))


class Probe:
    """Blocking grpcio calls on one channel, run in threads from Trio."""

    def __init__(self, port: int) -> None:
        self.channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        self._check = self.channel.unary_unary(
            "/grpc.health.v1.Health/Check", request_serializer=HealthCheckRequest.SerializeToString,
            response_deserializer=HealthCheckResponse.FromString)
        self._watch = self.channel.unary_stream(
            "/grpc.health.v1.Health/Watch", request_serializer=HealthCheckRequest.SerializeToString,
            response_deserializer=HealthCheckResponse.FromString)

    async def run(self, fn: Callable[[], Any]) -> Any:
        return await trio.to_thread.run_sync(fn)

    async def check(self, service: str = "") -> str:
        return await self.run(lambda: status_name(self._check(
            HealthCheckRequest(service=service), timeout=10)))

    def watch(self, count: int) -> list[str]:
        seen: list[str] = []
        call = self._watch(HealthCheckRequest(service=""), timeout=30)
        for response in call:
            seen.append(status_name(response))
            if len(seen) == count:
                call.cancel()
                break
        return seen

    async def unary(self, method: str, payload: bytes) -> tuple[str, bytes | None]:
        def go() -> tuple[str, bytes | None]:
            try:
                return "OK", self.channel.unary_unary(method)(payload, timeout=30)
            except grpc.RpcError as exc:
                return exc.code().name, None

        return await self.run(go)

    async def until(self, service: str, expected: str, seconds: float) -> None:
        async def reached() -> bool:
            return await self.check(service) == expected

        await until(reached, seconds=seconds, pause=0.1)


async def test_draining_gateway_reports_not_serving_and_finishes_calls(db_url: str) -> None:
    async with running_gateway(db_url, ingestion=False) as gw:
        server = next(d for d in gw.runtime.drainables if isinstance(d, GrpcServer))
        probe = Probe(gw.grpc_port)
        try:
            assert await probe.check() == "SERVING"
            results: dict[str, Any] = {}
            # no ingestion: the create waits its full timeout, then answers ACCEPTED
            request = create_request({"even_number": 2})
            request.wait = True
            request.wait_timeout_ms = 3000

            async def create() -> None:
                results["create"] = await probe.unary(CREATE, request.SerializeToString())

            async def watch() -> None:
                results["watch"] = await probe.run(lambda: probe.watch(2))

            async def in_flight() -> bool:  # the create has queued its request and waits
                return bool(gw.sql("SELECT 1 FROM pgmq.q_orchestration_task_requests"))

            async with trio.open_nursery() as nursery:
                nursery.start_soon(watch)
                nursery.start_soon(create)
                await until(in_flight)
                gw.runtime.request_shutdown()
                await probe.until("", "NOT_SERVING", 2)
                assert await probe.check("tasker.v1.TaskService") == "NOT_SERVING"
                assert "create" not in results
                assert server.receiver is not None and server.receiver.in_flight == 1
                refused = await probe.unary(LIST, message("ListTasksRequest").SerializeToString())
                assert refused[0] == "UNAVAILABLE"
            status, reply = results["create"]
            assert status == "OK" and reply is not None
            created = message("CreateTaskResponse").FromString(reply)
            assert created.status == 2  # CREATE_TASK_STATUS_ACCEPTED: finished, not cancelled
            assert results["watch"] == ["SERVING", "NOT_SERVING"]
        finally:
            probe.channel.close()


def set_connections(gw: Gateway, allowed: bool) -> None:
    name = psycopg.conninfo.conninfo_to_dict(gw.db_url)["dbname"]
    with psycopg.connect(with_database(gw.db_url, "postgres"), autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS {str(allowed).lower()}')
        if not allowed:
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                         " WHERE datname = %s AND pid <> pg_backend_pid()", (name,))


async def test_health_is_not_serving_while_the_database_is_unreachable(gw: Gateway) -> None:
    probe = Probe(gw.grpc_port)
    try:
        assert await probe.check() == "SERVING"
        set_connections(gw, False)
        try:
            await probe.until("", "NOT_SERVING", 20)
            async with gw.http() as http:
                assert (await http.get("/health/ready")).status_code == 503
        finally:
            set_connections(gw, True)
        await probe.until("", "SERVING", 60)
    finally:
        probe.channel.close()
