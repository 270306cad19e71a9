"""Authenticator, permission vocabulary and development credentials, without a server."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from grpclib.const import Status

from tasker_gateway import devauth, permissions
from tasker_gateway.auth import ANONYMOUS, Authenticator
from tasker_gateway.errors import Backpressure, UnprocessableRequest, classify
from tasker_shared.errors import (
    AuthError,
    ConfigError,
    ConflictError,
    NotFoundError,
    PermissionDenied,
    StoreError,
    StoreTimeout,
    StoreUnavailable,
    TaskAlreadyFinished,
    TransitionRejected,
    Unavailable,
    ValidationError,
)
from tasker_shared.runtime.settings import AuthSettings

PRIVATE, PUBLIC = devauth.generate_key_pair()
KEY = devauth.load_private_key(PRIVATE)


def settings(**overrides: Any) -> AuthSettings:
    base: dict[str, Any] = {"enabled": True, "jwt_public_key": PUBLIC.decode(),
                            "api_keys": [{"key": "k1", "permissions": ["tasks:read"],
                                          "description": "reader"}]}
    base.update(overrides)
    return AuthSettings(**base)


def bearer(permissions: list[str], **kwargs: Any) -> dict[str, str]:
    options: dict[str, Any] = {"subject": "svc", "issuer": "tasker-core",
                               "audience": "tasker-api", "expiry_hours": 1}
    options.update(kwargs)
    return {"authorization": "Bearer " + devauth.issue_token(KEY, permissions=permissions,
                                                             **options)}


def test_disabled_auth_is_permissive() -> None:
    auth = Authenticator(AuthSettings())
    principal = auth.authenticate({})
    assert principal is ANONYMOUS and principal.allows("dlq:update")
    auth.authorize(principal, "system:config_read")


def test_api_keys_and_wildcards() -> None:
    auth = Authenticator(settings(api_keys=[
        {"key": "k1", "permissions": ["tasks:read"], "description": "reader"},
        {"key": "k2", "permissions": ["steps:*"]}]))
    reader = auth.authenticate({"x-api-key": "k1"})
    assert reader.subject == "reader" and reader.method == "api_key"
    auth.authorize(reader, "tasks:read")
    with pytest.raises(PermissionDenied, match="tasks:create"):
        auth.authorize(reader, "tasks:create")
    operator = auth.authenticate({"x-api-key": "k2"})
    assert operator.subject == "api-key-1"
    auth.authorize(operator, "steps:resolve")
    with pytest.raises(AuthError, match="invalid API key"):
        auth.authenticate({"x-api-key": "nope"})
    with pytest.raises(AuthError, match="missing credentials"):
        auth.authenticate({})
    custom = Authenticator(settings(api_key_header="X-Tasker-Key"))
    assert custom.authenticate({"x-tasker-key": "k1"}).subject == "reader"


def test_jwt_verification() -> None:
    auth = Authenticator(settings())
    principal = auth.authenticate(bearer(["tasks:*", "dlq:read"]))
    assert principal.method == "jwt" and principal.subject == "svc"
    auth.authorize(principal, "tasks:cancel")
    for headers, message in (
        (bearer(["tasks:read"], now=time.time() - 7200), "expired"),
        (bearer(["tasks:read"], audience="other"), "audience"),
        (bearer(["tasks:read"], issuer="other"), "issuer"),
        ({"authorization": "Bearer not.a.jwt"}, "malformed"),
        ({"authorization": "Basic abc"}, "Bearer"),
        ({"authorization": "Bearer "}, "Bearer"),
    ):
        with pytest.raises(AuthError, match=message):
            auth.authenticate(headers)
    other_private, _ = devauth.generate_key_pair()
    forged = devauth.issue_token(other_private, subject="x", permissions=["tasks:read"],
                                 issuer="tasker-core", audience="tasker-api", expiry_hours=1)
    with pytest.raises(AuthError, match="signature"):
        auth.authenticate({"authorization": f"Bearer {forged}"})
    hs = jwt.encode({"sub": "x", "iss": "tasker-core", "aud": "tasker-api",
                     "exp": int(time.time()) + 60}, "s" * 32, algorithm="HS256")
    with pytest.raises(AuthError, match="algorithm"):
        auth.authenticate({"authorization": f"Bearer {hs}"})
    no_exp = jwt.encode({"sub": "x", "iss": "tasker-core", "aud": "tasker-api"}, KEY,
                        algorithm="RS256")
    with pytest.raises(AuthError, match="required claim"):
        auth.authenticate({"authorization": f"Bearer {no_exp}"})
    future = jwt.encode({"sub": "x", "iss": "tasker-core", "aud": "tasker-api",
                         "exp": int(time.time()) + 600, "nbf": int(time.time()) + 300}, KEY,
                        algorithm="RS256")
    with pytest.raises(AuthError, match="not valid yet"):
        auth.authenticate({"authorization": f"Bearer {future}"})


def test_permission_claims() -> None:
    strict = Authenticator(settings())
    token = jwt.encode({"sub": "x", "iss": "tasker-core", "aud": "tasker-api",
                        "exp": int(time.time()) + 60, "permissions": ["tasks:read", "*"]},
                       KEY, algorithm="RS256")
    with pytest.raises(AuthError, match="unknown permissions"):
        strict.authenticate({"authorization": f"Bearer {token}"})
    lenient = Authenticator(settings(strict_validation=False))
    principal = lenient.authenticate({"authorization": f"Bearer {token}"})
    assert principal.permissions == frozenset({"tasks:read"})
    scalar = jwt.encode({"sub": "x", "iss": "tasker-core", "aud": "tasker-api",
                         "exp": int(time.time()) + 60, "permissions": "tasks:read"},
                        KEY, algorithm="RS256")
    with pytest.raises(AuthError, match="must be a list"):
        strict.authenticate({"authorization": f"Bearer {scalar}"})
    scopes = Authenticator(settings(permissions_claim="scp"))
    assert scopes.authenticate(bearer(["dlq:read"], permissions_claim="scp")).permissions == \
        frozenset({"dlq:read"})


def test_configuration_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown permissions"):
        Authenticator(settings(api_keys=[{"key": "k", "permissions": ["tasks:fly"]}]))
    lenient = Authenticator(settings(strict_validation=False,
                                     api_keys=[{"key": "k", "permissions": ["tasks:fly"]}]))
    assert lenient.authenticate({"x-api-key": "k"}).permissions == frozenset()
    with pytest.raises(ConfigError, match="cannot read"):
        Authenticator(settings(jwt_public_key=None, jwt_public_key_path=str(tmp_path / "no")))
    path = tmp_path / "pub.pem"
    path.write_bytes(PUBLIC)
    from_file = Authenticator(settings(jwt_public_key=None, jwt_public_key_path=str(path)))
    assert from_file.authenticate(bearer(["tasks:read"])).subject == "svc"
    with pytest.raises(ConfigError, match="not a PEM public key"):
        Authenticator(settings(jwt_public_key="garbage"))
    with pytest.raises(ConfigError, match="mixes"):
        Authenticator(settings(jwt_allowed_algorithms=["RS256", "HS256"]))
    with pytest.raises(ConfigError, match="must not be empty"):
        Authenticator(settings(jwt_allowed_algorithms=[]))
    secret = "shared-secret-of-at-least-32-bytes!"
    hmac = Authenticator(settings(jwt_public_key=secret,
                                  jwt_allowed_algorithms=["HS256"]))
    token = jwt.encode({"sub": "h", "iss": "tasker-core", "aud": "tasker-api",
                        "exp": int(time.time()) + 60, "permissions": ["tasks:read"]},
                       secret, algorithm="HS256")
    assert hmac.authenticate({"authorization": f"Bearer {token}"}).subject == "h"
    keys_only = Authenticator(settings(jwt_public_key=None))
    with pytest.raises(AuthError, match="not configured"):
        keys_only.authenticate(bearer(["tasks:read"]))


def test_vocabulary_and_dev_credentials() -> None:
    assert permissions.is_known("tasks:*") and not permissions.is_known("*")
    assert permissions.grants(frozenset({"dlq:*"}), "dlq:update")
    assert not permissions.grants(frozenset({"dlq:read"}), "dlq:update")
    assert permissions.grpc_permission("/tasker.v1.HealthService/CheckHealth") is None
    assert permissions.grpc_permission("/tasker.v1.TaskService/CreateTask") == "tasks:create"
    with pytest.raises(KeyError):
        permissions.grpc_permission("/tasker.v1.TaskService/Explode")
    with pytest.raises(ValidationError, match="unknown permissions"):
        devauth.issue_token(KEY, subject="x", permissions=["*"], issuer="i", audience="a",
                            expiry_hours=1)
    with pytest.raises(ValidationError, match="positive"):
        devauth.issue_token(KEY, subject="x", permissions=[], issuer="i", audience="a",
                            expiry_hours=0)
    with pytest.raises(ValidationError, match="PEM private key"):
        devauth.load_private_key(b"nope")
    with pytest.raises(ValidationError, match="2048"):
        devauth.generate_key_pair(bits=1024)
    key = devauth.new_api_key()
    assert key.startswith("tk_") and len(key) > 40
    snippet = devauth.api_key_toml(key, ["tasks:read"], "ci")
    assert '[[gateway.auth.api_keys]]' in snippet and '"tasks:read"' in snippet


@pytest.mark.parametrize(("error", "http", "grpc"), [
    (ValidationError("x"), 400, Status.INVALID_ARGUMENT),
    (UnprocessableRequest("x"), 422, Status.INVALID_ARGUMENT),
    (NotFoundError("x"), 404, Status.NOT_FOUND),
    (ConflictError("x"), 409, Status.ALREADY_EXISTS),
    (TransitionRejected("x"), 409, Status.FAILED_PRECONDITION),
    (TaskAlreadyFinished("x"), 400, Status.FAILED_PRECONDITION),
    (AuthError("x"), 401, Status.UNAUTHENTICATED),
    (PermissionDenied("x"), 403, Status.PERMISSION_DENIED),
    (Backpressure("x", retry_after=30), 503, Status.RESOURCE_EXHAUSTED),
    (Unavailable("x", retry_after=5), 503, Status.UNAVAILABLE),
    (StoreTimeout("x"), 504, Status.DEADLINE_EXCEEDED),
    (StoreUnavailable("x"), 503, Status.UNAVAILABLE),
    (StoreError("x", retryable=True), 503, Status.UNAVAILABLE),
    (StoreError("bad", sqlstate="22P05"), 400, Status.INVALID_ARGUMENT),
    (StoreError("x"), 500, Status.INTERNAL),
    (RuntimeError("x"), 500, Status.INTERNAL),
])
def test_error_mapping(error: Exception, http: int, grpc: Status) -> None:
    info = classify(error)
    assert (info.http_status, info.grpc_status) == (http, grpc)
    if http == 500:
        assert "internal error" in info.message
