"""The auth matrix: every protected route and RPC x no credential / wrong key / expired JWT /
wrong-audience JWT / missing permission / right permission; public endpoints stay open."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from grpclib.const import Status
from grpclib.exceptions import GRPCError

from tasker_gateway import devauth
from tasker_gateway.grpc.server import services
from tasker_gateway.permissions import GRPC_PERMISSIONS, PERMISSIONS
from tasker_gateway.rest.app import all_routes
from tests.gateway.conftest import Gateway, grpc_client, running_gateway

MISSING = "00000000-0000-7000-8000-000000000000"
PATH_VALUES = {"task_uuid": MISSING, "step_uuid": MISSING, "dlq_entry_uuid": MISSING,
               "request_id": "req-1", "namespace": "examples", "name": "nope",
               "version": "1.0.0"}
BODIES: dict[str, Any] = {
    "create_task": {"name": "no_such_template", "namespace": "examples"},
    "create_tasks": {"tasks": [{"name": "no_such_template", "namespace": "examples"}]},
    "resolve_step": {"action_type": "resolve_manually", "reason": "r", "resolved_by": "me"},
    "update_dlq_entry": {"resolution_notes": "n"},
}


Keys = tuple[Any, bytes]  # (loaded private key, public PEM)


@pytest.fixture(scope="module")
def keys() -> Keys:
    private, public = devauth.generate_key_pair()
    return devauth.load_private_key(private), public


def token(keys: Keys, permissions: list[str], **kwargs: Any) -> str:
    options: dict[str, Any] = {"subject": "tester", "issuer": "tasker-core",
                               "audience": "tasker-api", "expiry_hours": 1.0}
    options.update(kwargs)
    return devauth.issue_token(keys[0], permissions=permissions, **options)


@pytest.fixture
async def secured(db_url: str, keys: Keys) -> AsyncIterator[Gateway]:
    auth = {"enabled": True, "jwt_public_key": keys[1].decode(),
            "api_keys": [{"key": "full-key", "description": "full",
                          "permissions": ["tasks:*", "steps:*", "dlq:*", "templates:*",
                                          "system:*"]}]}
    async with running_gateway(db_url, gateway={"auth": auth,
                                                "config_endpoint_enabled": True}) as gw:
        yield gw


def cases(keys: Keys, permission: str) -> list[tuple[str, dict[str, str], str]]:
    """(case, headers, expectation) where expectation is 401, 403 or 'ok'."""
    others = sorted(PERMISSIONS - {permission})
    bearer = "Bearer "
    return [
        ("no credential", {}, "401"),
        ("wrong key", {"x-api-key": "not-a-key"}, "401"),
        ("expired jwt", {"authorization": bearer + token(
            keys, [permission], now=time.time() - 7200)}, "401"),
        ("wrong audience", {"authorization": bearer + token(
            keys, [permission], audience="someone-else")}, "401"),
        ("missing permission", {"authorization": bearer + token(keys, others)}, "403"),
        ("right permission", {"authorization": bearer + token(keys, [permission])}, "ok"),
    ]


async def test_rest_matrix(secured: Gateway, keys: Keys) -> None:
    problems = []
    protected = [r for r in all_routes(secured.ctx) if r.permission is not None]
    assert len(protected) == 24
    async with secured.http() as http:
        for route in protected:
            path = route.path.format(**PATH_VALUES)
            assert route.permission is not None
            for case, headers, expected in cases(keys, route.permission):
                response = await http.request(route.method, path, headers=headers,
                                              json=BODIES.get(route.name))
                status = response.status_code
                good = (str(status) == expected if expected != "ok"
                        else status not in (401, 403))
                if expected == "401" and good:
                    good = response.json()["error"]["code"] == "unauthenticated"
                if not good:
                    problems.append(f"{route.method} {path} [{case}] -> {status}")
        full = await http.get("/v1/tasks", headers={"x-api-key": "full-key"})
        assert full.status_code == 200
        anonymous = await http.get("/v1/tasks")
        assert anonymous.headers["www-authenticate"] == 'Bearer realm="tasker"'
        for public in ("/health", "/health/live", "/health/ready", "/health/detailed",
                       "/metrics", "/api-docs/openapi.json", "/api-docs/ui"):
            assert (await http.get(public)).status_code == 200, public
    assert not problems, "\n".join(problems)


async def test_grpc_matrix(secured: Gateway, keys: Keys) -> None:
    handlers = {}
    for service in services(secured.ctx):
        handlers.update(service.__mapping__())
    assert set(GRPC_PERMISSIONS) <= set(handlers)
    problems = []
    async with grpc_client(secured.grpc_port) as rpc:
        for method, permission in GRPC_PERMISSIONS.items():
            handler = handlers[method]
            for case, headers, expected in cases(keys, permission):
                try:
                    await rpc.raw(method, handler.cardinality, handler.request_type(),
                                  handler.reply_type, metadata=headers)
                    status = Status.OK
                except GRPCError as exc:
                    status = exc.status
                wanted = {"401": {Status.UNAUTHENTICATED}, "403": {Status.PERMISSION_DENIED}}
                good = (status in wanted[expected] if expected != "ok"
                        else status not in (Status.UNAUTHENTICATED, Status.PERMISSION_DENIED))
                if not good:
                    problems.append(f"{method} [{case}] -> {status.name}")
        for public, request in (("/tasker.v1.HealthService/CheckHealth", None),
                                ("/grpc.health.v1.Health/Check", None)):
            handler = handlers[public]
            replies = await rpc.raw(public, handler.cardinality,
                                    request or handler.request_type(), handler.reply_type)
            assert replies
        key_call = await rpc.raw("/tasker.v1.TaskService/ListTasks",
                                 handlers["/tasker.v1.TaskService/ListTasks"].cardinality,
                                 handlers["/tasker.v1.TaskService/ListTasks"].request_type(),
                                 handlers["/tasker.v1.TaskService/ListTasks"].reply_type,
                                 metadata={"x-api-key": "full-key"})
        assert key_call[0].pagination.total_count == 0
    assert not problems, "\n".join(problems)
