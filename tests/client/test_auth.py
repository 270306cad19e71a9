"""Credentials from the client and the CLI against a gateway with authentication enabled."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tasker_client import TaskerClient
from tasker_client.errors import AuthError, PermissionDenied
from tasker_gateway.devauth import generate_key_pair, issue_token
from tests.client.conftest import LINEAR, Stack, StackFactory
from tests.client.test_cli import tasker

READER_KEY = "reader-key-0123456789"
ADMIN_PERMISSIONS = ["tasks:*", "steps:*", "templates:*", "dlq:*"]


@pytest.fixture(scope="module")
def key_pair() -> tuple[bytes, bytes]:
    return generate_key_pair()


def token(private_pem: bytes, permissions: list[str]) -> str:
    return issue_token(private_pem, subject="pytest", permissions=permissions,
                       issuer="tasker-core", audience="tasker-api", expiry_hours=1)


@pytest.fixture
async def secured(start_stack: StackFactory, key_pair: tuple[bytes, bytes]
                  ) -> AsyncIterator[Stack]:
    auth = {
        "enabled": True,
        "api_keys": [{"key": READER_KEY, "description": "reader",
                      "permissions": ["tasks:read", "tasks:list", "templates:read"]}],
        "jwt_public_key": key_pair[1].decode(),
    }
    async with start_stack(worker=False, gateway={"auth": auth}) as running:
        yield running


async def test_client_credentials(secured: Stack, key_pair: tuple[bytes, bytes]) -> None:
    async with TaskerClient(secured.address) as anonymous:
        assert (await anonymous.health()).status == "ok"  # probes need no credentials
        with pytest.raises(AuthError, match="missing credentials"):
            await anonymous.list_templates()
    async with TaskerClient(secured.address, api_key="wrong") as wrong:
        with pytest.raises(AuthError, match="invalid API key"):
            await wrong.list_templates()
    async with TaskerClient(secured.address, api_key=READER_KEY) as reader:
        assert (await reader.list_templates()).templates
        with pytest.raises(PermissionDenied, match="tasks:create"):
            await reader.create_task(**LINEAR, context={"even_number": 2})
    admin = token(key_pair[0], ADMIN_PERMISSIONS)
    async with TaskerClient(secured.address, token=admin, api_key="ignored") as client:
        created = await client.create_task(**LINEAR, context={"even_number": 2})
        assert created.created


async def test_cli_credentials_from_flags_and_environment(
    secured: Stack, key_pair: tuple[bytes, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "250")
    monkeypatch.setenv("TASKER_GATEWAY_ADDRESS", secured.address)
    for name in ("TASKER_ORCHESTRATION_AUTH_TOKEN", "TASKER_AUTH_TOKEN", "TASKER_API_KEY",
                 "TASKER_API_KEY_HEADER"):
        monkeypatch.delenv(name, raising=False)
    code, _, err = await tasker("template", "list")
    assert code == 1
    assert err.startswith("error: unauthenticated:")

    monkeypatch.setenv("TASKER_API_KEY", READER_KEY)
    code, out, _ = await tasker("template", "list")
    assert code == 0
    assert "linear_workflow" in out
    create = ["task", "create", "linear_workflow", "--namespace", "examples", "--version",
              "1.0.0", "--context", '{"even_number": 2}']
    code, _, err = await tasker(*create)
    assert code == 1
    assert err.startswith("error: permission_denied:")

    # A token in the environment wins over the API key; a flag wins over both.
    monkeypatch.setenv("TASKER_AUTH_TOKEN", token(key_pair[0], ["templates:read"]))
    monkeypatch.setenv("TASKER_ORCHESTRATION_AUTH_TOKEN", token(key_pair[0], ADMIN_PERMISSIONS))
    code, out, err = await tasker(*create)
    assert code == 0, err
    code, _, err = await tasker(*create, "--token", "not-a-jwt")
    assert code == 1
    assert "token is malformed" in err
    code, _, err = await tasker("template", "list", "--api-key", READER_KEY,
                                "--api-key-header", "x-other-header")
    assert code == 1  # the gateway expects x-api-key
    assert err.startswith("error: unauthenticated:")


async def test_cli_signs_its_own_token_from_a_private_key(
    secured: Stack, key_pair: tuple[bytes, bytes], monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    key_file = tmp_path / "signing.pem"
    key_file.write_bytes(key_pair[0])
    for name in ("TASKER_ORCHESTRATION_AUTH_TOKEN", "TASKER_AUTH_TOKEN", "TASKER_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TASKER_JWT_PRIVATE_KEY_PATH", str(key_file))
    code, out, err = await tasker("task", "create", "linear_workflow", "--namespace",
                                  "examples", "--version", "1.0.0", "--context",
                                  '{"even_number": 8}', "--address", secured.address, "--json")
    assert code == 0, err
    assert json.loads(out)["status"] == "created"  # --json spells enums as REST does
    monkeypatch.setenv("TASKER_JWT_PRIVATE_KEY_PATH", str(tmp_path / "missing.pem"))
    code, _, err = await tasker("template", "list", "--address", secured.address)
    assert code == 1
    assert err.startswith("error: config_error: cannot read the JWT private key")
