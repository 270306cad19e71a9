"""Unit tests for tasker_client.config: addresses, credential precedence, policies."""

from __future__ import annotations

from pathlib import Path

import jwt
import pytest

from tasker_client.config import (
    ClientConfig,
    Credentials,
    Endpoint,
    RetryPolicy,
    parse_address,
    resolve_config,
    resolve_credentials,
)
from tasker_client.errors import ConfigError
from tasker_client.signing import sign_token
from tasker_gateway.devauth import generate_key_pair


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("localhost:9190", Endpoint(host="localhost", port=9190)),
        ("gateway", Endpoint(host="gateway", port=9190)),
        ("10.0.0.5:50051", Endpoint(host="10.0.0.5", port=50051)),
        ("grpc://gw:1234/", Endpoint(host="gw", port=1234)),
        ("http://gw:1234", Endpoint(host="gw", port=1234)),
        ("grpcs://gw.example.com", Endpoint(host="gw.example.com", port=9190, tls=True)),
        ("HTTPS://gw:443", Endpoint(host="gw", port=443, tls=True)),
        ("[::1]:9000", Endpoint(host="::1", port=9000)),
        ("[::1]", Endpoint(host="::1", port=9190)),
        ("  host:1  ", Endpoint(host="host", port=1)),
        ("::1", Endpoint(host="::1", port=9190)),
    ],
)
def test_parse_address(text: str, expected: Endpoint) -> None:
    assert parse_address(text) == expected


@pytest.mark.parametrize(
    "text", ["", ":9190", "host:0", "host:70000", "host:abc", "[::1", "[::1]x", "a/b:1"]
)
def test_parse_address_rejects(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_address(text)


def test_endpoint_str() -> None:
    assert str(Endpoint(host="gw", port=1)) == "grpc://gw:1"
    assert str(Endpoint(host="::1", port=2, tls=True)) == "grpcs://[::1]:2"


ENV = {
    "TASKER_ORCHESTRATION_AUTH_TOKEN": "orch",
    "TASKER_AUTH_TOKEN": "generic",
    "TASKER_API_KEY": "key",
    "TASKER_API_KEY_HEADER": "X-Custom-Key",
}


def test_credentials_precedence() -> None:
    assert resolve_credentials(environ=ENV).token == "orch"
    env = dict(ENV, TASKER_ORCHESTRATION_AUTH_TOKEN="")
    assert resolve_credentials(environ=env).token == "generic"
    env = {"TASKER_API_KEY": "key", "TASKER_API_KEY_HEADER": "X-Custom-Key"}
    creds = resolve_credentials(environ=env)
    assert (creds.kind, creds.api_key, creds.api_key_header) == ("api_key", "key", "X-Custom-Key")
    assert creds.metadata() == {"x-custom-key": "key"}
    assert resolve_credentials(environ={}).kind == "none"
    assert resolve_credentials(environ={}).metadata() == {}


def test_explicit_credentials_beat_the_environment() -> None:
    creds = resolve_credentials(token="mine", environ=ENV)
    assert creds.metadata() == {"authorization": "Bearer mine"}
    creds = resolve_credentials(api_key="k2", api_key_header="x-other", environ=ENV)
    assert creds.kind == "api_key"
    assert creds.metadata() == {"x-other": "k2"}
    assert resolve_credentials(api_key="k3", environ=ENV).api_key_header == "X-Custom-Key"


def test_token_wins_over_key_and_secrets_stay_out_of_repr() -> None:
    creds = Credentials(token="secret-token", api_key="secret-key")
    assert creds.kind == "bearer"
    assert creds.metadata() == {"authorization": "Bearer secret-token"}
    assert "secret" not in repr(creds)


def test_resolve_config_address_sources(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_config(environ={}).endpoint == Endpoint(host="localhost", port=9190)
    env = {"TASKER_GATEWAY_ADDRESS": "gw:7000"}
    assert resolve_config(environ=env).endpoint.port == 7000
    assert resolve_config("other:1", environ=env).endpoint.host == "other"
    monkeypatch.setenv("TASKER_GATEWAY_ADDRESS", "fromenv:7001")
    monkeypatch.setenv("TASKER_AUTH_TOKEN", "tok")
    config = resolve_config(timeout=None)
    assert config.endpoint == Endpoint(host="fromenv", port=7001)
    assert config.credentials.token == "tok"
    assert config.timeout is None


def test_policies_validate() -> None:
    policy = RetryPolicy(initial_backoff=0.1, max_backoff=1.0, multiplier=2.0)
    assert [policy.delay(n) for n in (1, 2, 3, 4, 5)] == [0.1, 0.2, 0.4, 0.8, 1.0]
    for bad in (
        {"max_attempts": 0},
        {"initial_backoff": -1.0},
        {"initial_backoff": 2.0, "max_backoff": 1.0},
        {"multiplier": 0.5},
        {"jitter": 2.0},
    ):
        with pytest.raises(ConfigError):
            RetryPolicy(**bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        ClientConfig(endpoint=Endpoint(host="h", port=1), timeout=0)


@pytest.fixture(scope="module")
def private_key(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    private, public = generate_key_pair()
    path = tmp_path_factory.mktemp("keys") / "private.pem"
    path.write_bytes(private)
    return path, public


def test_private_key_signs_the_last_resort_token(private_key: tuple[Path, bytes]) -> None:
    path, public = private_key
    env = {"TASKER_JWT_PRIVATE_KEY_PATH": str(path), "TASKER_JWT_AUDIENCE": "aud-x"}
    creds = resolve_credentials(environ=env)
    assert creds.kind == "bearer"
    assert creds.token is not None
    claims = jwt.decode(creds.token, public, algorithms=["RS256"], audience="aud-x",
                        issuer="tasker-core")
    assert "tasks:*" in claims["permissions"]
    assert claims["exp"] - claims["iat"] == 3600
    # Any earlier source wins over signing.
    assert resolve_credentials(environ={**env, "TASKER_API_KEY": "k"}).kind == "api_key"


def test_signing_failures_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        sign_token(tmp_path / "missing.pem")
    bad = tmp_path / "bad.pem"
    bad.write_text("not a key")
    with pytest.raises(ConfigError, match="cannot sign"):
        sign_token(bad)
