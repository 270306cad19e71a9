"""Where the gateway is and how to authenticate: from arguments, else the environment (SPEC 7.4)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from tasker_client.errors import ConfigError
from tasker_client.signing import sign_token

DEFAULT_ADDRESS = "localhost:9190"
DEFAULT_PORT = 9190
DEFAULT_API_KEY_HEADER = "x-api-key"
DEFAULT_TIMEOUT_SECONDS = 30.0

ADDRESS_ENV = "TASKER_GATEWAY_ADDRESS"
# Bearer tokens, strongest first; then the API key (SPEC 7.4 client precedence).
TOKEN_ENVS: tuple[str, ...] = ("TASKER_ORCHESTRATION_AUTH_TOKEN", "TASKER_AUTH_TOKEN")
API_KEY_ENV = "TASKER_API_KEY"
API_KEY_HEADER_ENV = "TASKER_API_KEY_HEADER"
# Last resort: sign a short-lived token locally (issuer/audience overridable).
PRIVATE_KEY_ENV = "TASKER_JWT_PRIVATE_KEY_PATH"
ISSUER_ENV = "TASKER_JWT_ISSUER"
AUDIENCE_ENV = "TASKER_JWT_AUDIENCE"

_PLAIN_SCHEMES = ("grpc://", "http://")
_TLS_SCHEMES = ("grpcs://", "https://")


@dataclass(frozen=True, kw_only=True, slots=True)
class Endpoint:
    """A parsed gateway address."""

    host: str
    port: int
    tls: bool = False

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'grpcs' if self.tls else 'grpc'}://{host}:{self.port}"


@dataclass(frozen=True, kw_only=True, slots=True)
class Credentials:
    """A bearer token or an API key (never both are sent; the token wins)."""

    token: str | None = field(default=None, repr=False)
    api_key: str | None = field(default=None, repr=False)
    api_key_header: str = DEFAULT_API_KEY_HEADER

    @property
    def kind(self) -> str:
        """"bearer", "api_key" or "none"."""
        if self.token:
            return "bearer"
        return "api_key" if self.api_key else "none"

    def metadata(self) -> dict[str, str]:
        """The gRPC metadata carrying these credentials."""
        if self.token:
            return {"authorization": f"Bearer {self.token}"}
        if self.api_key:
            return {self.api_key_header.lower(): self.api_key}
        return {}


@dataclass(frozen=True, kw_only=True, slots=True)
class RetryPolicy:
    """Exponential backoff for UNAVAILABLE: at most `max_attempts` tries in all."""

    max_attempts: int = 5
    initial_backoff: float = 0.1
    max_backoff: float = 2.0
    multiplier: float = 2.0
    jitter: float = 0.2

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ConfigError("retry max_attempts must be at least 1")
        if self.initial_backoff < 0 or self.max_backoff < self.initial_backoff:
            raise ConfigError("retry backoff must satisfy 0 <= initial_backoff <= max_backoff")
        if self.multiplier < 1 or not 0 <= self.jitter <= 1:
            raise ConfigError("retry multiplier must be >= 1 and jitter within [0, 1]")

    def delay(self, retry: int) -> float:
        """The base pause before retry number `retry` (1-based), without jitter."""
        return min(self.initial_backoff * self.multiplier ** (retry - 1), self.max_backoff)


NO_RETRY = RetryPolicy(max_attempts=1)


@dataclass(frozen=True, kw_only=True, slots=True)
class ClientConfig:
    """Everything a client needs to reach the gateway."""

    endpoint: Endpoint
    credentials: Credentials = field(default_factory=Credentials)
    timeout: float | None = DEFAULT_TIMEOUT_SECONDS
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    def __post_init__(self) -> None:
        if self.timeout is not None and self.timeout <= 0:
            raise ConfigError("timeout must be positive (or None for no deadline)")


def parse_address(address: str) -> Endpoint:
    """`host[:port]`, `[v6]:port`, optionally prefixed by grpc:// http:// (plain) or grpcs:// https://."""
    text = address.strip()
    tls = False
    for scheme in (*_PLAIN_SCHEMES, *_TLS_SCHEMES):
        if text.lower().startswith(scheme):
            tls = scheme in _TLS_SCHEMES
            text = text[len(scheme):]
            break
    text = text.rstrip("/")
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ConfigError(f"invalid gateway address {address!r}")
        port_text = rest[1:]
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    else:
        host, port_text = text, ""
    if not host or "/" in host:
        raise ConfigError(f"invalid gateway address {address!r}: expected HOST[:PORT]")
    return Endpoint(host=host, port=_port(port_text, address), tls=tls)


def _port(text: str, address: str) -> int:
    if not text:
        return DEFAULT_PORT
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ConfigError(f"invalid port in gateway address {address!r}")
    return int(text)


def _env(environ: Mapping[str, str], name: str) -> str | None:
    value = environ.get(name, "").strip()
    return value or None


def resolve_credentials(
    *,
    token: str | None = None,
    api_key: str | None = None,
    api_key_header: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> Credentials:
    """Explicit token > explicit API key > TASKER_ORCHESTRATION_AUTH_TOKEN > TASKER_AUTH_TOKEN
    > TASKER_API_KEY (sent in TASKER_API_KEY_HEADER, default x-api-key) > a token signed with
    TASKER_JWT_PRIVATE_KEY_PATH."""
    env = os.environ if environ is None else environ
    header = api_key_header or _env(env, API_KEY_HEADER_ENV) or DEFAULT_API_KEY_HEADER
    if token:
        return Credentials(token=token, api_key_header=header)
    if api_key:
        return Credentials(api_key=api_key, api_key_header=header)
    for name in TOKEN_ENVS:
        env_token = _env(env, name)
        if env_token:
            return Credentials(token=env_token, api_key_header=header)
    env_key = _env(env, API_KEY_ENV)
    key_path = _env(env, PRIVATE_KEY_ENV)
    if env_key is None and key_path is not None:
        signed = sign_token(
            key_path,
            issuer=_env(env, ISSUER_ENV) or "tasker-core",
            audience=_env(env, AUDIENCE_ENV) or "tasker-api",
        )
        return Credentials(token=signed, api_key_header=header)
    return Credentials(api_key=env_key, api_key_header=header)


def resolve_config(
    address: str | None = None,
    *,
    token: str | None = None,
    api_key: str | None = None,
    api_key_header: str | None = None,
    timeout: float | None = DEFAULT_TIMEOUT_SECONDS,
    retry: RetryPolicy | None = None,
    environ: Mapping[str, str] | None = None,
) -> ClientConfig:
    """A ClientConfig from explicit values, falling back to TASKER_* environment variables."""
    env = os.environ if environ is None else environ
    return ClientConfig(
        endpoint=parse_address(address or _env(env, ADDRESS_ENV) or DEFAULT_ADDRESS),
        credentials=resolve_credentials(
            token=token, api_key=api_key, api_key_header=api_key_header, environ=env
        ),
        timeout=timeout,
        retry=retry or RetryPolicy(),
    )
