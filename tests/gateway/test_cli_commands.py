"""`tasker openapi` and `tasker auth keygen|token|api-key`."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from tasker_cli.main import main
from tasker_gateway.auth import Authenticator
from tasker_gateway.rest.app import openapi_document
from tasker_shared.runtime.settings import AuthSettings


def test_openapi_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "docs" / "openapi.json"
    assert main(["openapi", "--output", str(target), "--server", "http://gw:8080"]) == 0
    document = json.loads(target.read_text())
    assert document["servers"] == [{"url": "http://gw:8080"}]
    assert document["paths"] == openapi_document()["paths"]
    assert main(["openapi", "--output", str(target), "--server", "http://gw:8080",
                 "--check"]) == 0
    assert main(["openapi", "--output", str(target), "--check"]) == 1
    assert "out of date" in capsys.readouterr().err
    assert main(["openapi", "--output", "-", "--api-key-header", "X-Key"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["components"]["securitySchemes"]["api_key_auth"]["name"] == "X-Key"


def test_document_shape() -> None:
    document = openapi_document()
    for name, schema in document["components"]["schemas"].items():
        Draft202012Validator.check_schema(schema)
        assert name.isidentifier(), name
    operations = [op for path in document["paths"].values() for op in path.values()]
    assert len({op["operationId"] for op in operations}) == len(operations) == 29
    for op in operations:
        for status, response in op["responses"].items():
            assert "X-Request-Id" in response["headers"], (op["operationId"], status)
        protected = bool(op["security"])
        assert protected == ("x-required-permission" in op)
        assert protected == ("401" in op["responses"] and "403" in op["responses"])


def test_auth_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["auth", "keygen", "--out-dir", str(tmp_path)]) == 0
    private, public = tmp_path / "jwt-private.pem", tmp_path / "jwt-public.pem"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert "jwt_public_key_path" in capsys.readouterr().out
    assert main(["auth", "keygen", "--out-dir", str(tmp_path)]) == 2
    assert "--force" in capsys.readouterr().err
    assert main(["auth", "keygen", "--out-dir", str(tmp_path), "--bits", "512", "--force"]) == 2

    assert main(["auth", "token", "-p", "tasks:read,steps:*", "-p", "dlq:read",
                 "--private-key", str(private), "--subject", "ci"]) == 0
    token = capsys.readouterr().out.strip()
    verifier = Authenticator(AuthSettings(enabled=True, jwt_public_key=public.read_text()))
    principal = verifier.authenticate({"authorization": f"Bearer {token}"})
    assert principal.subject == "ci"
    assert principal.permissions == frozenset({"tasks:read", "steps:*", "dlq:read"})
    assert main(["auth", "token", "-p", "*", "--private-key", str(private)]) == 2
    assert main(["auth", "token", "-p", "tasks:read",
                 "--private-key", str(tmp_path / "missing.pem")]) == 2
    assert main(["auth", "token", "-p", "tasks:read", "--private-key", str(public)]) == 2
    assert "private key" in capsys.readouterr().err

    assert main(["auth", "api-key", "-p", "tasks:*", "--description", "robot"]) == 0
    out = capsys.readouterr().out
    key = out.splitlines()[0]
    assert f'key = "{key}"' in out and 'description = "robot"' in out
    assert main(["auth", "api-key", "-p", "tasks:everything"]) == 2


def test_token_needs_a_key(monkeypatch: pytest.MonkeyPatch,
                           capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("TASKER_CONFIG_PATH", raising=False)
    assert main(["auth", "token", "-p", "tasks:read"]) == 2
    assert "no private key" in capsys.readouterr().err
