"""Authentication (API keys, JWT) and authorisation for both transports (SPEC 7.4).

`Authenticator.authenticate` turns request headers (HTTP headers or gRPC metadata, keys
lower-cased) into a `Principal`; `authorize` checks one permission. With auth disabled
every caller is the permissive anonymous principal.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import jwt
from cryptography.hazmat.primitives import serialization

from tasker_gateway import permissions as perms
from tasker_shared.errors import AuthError, ConfigError, PermissionDenied
from tasker_shared.runtime.settings import AuthSettings

_ASYMMETRIC = ("RS", "PS", "ES", "Ed")


class Headers(Protocol):
    """Case-insensitive header lookup (HTTP headers, gRPC metadata)."""

    def get(self, key: str) -> str | None: ...


@dataclass(frozen=True, kw_only=True, slots=True)
class Principal:
    """Who is calling and what they may do."""

    subject: str
    method: str  # "api_key", "jwt" or "anonymous"
    permissions: frozenset[str]

    @property
    def unrestricted(self) -> bool:
        return self.method == "anonymous"

    def allows(self, permission: str) -> bool:
        return self.unrestricted or perms.grants(self.permissions, permission)

    def audit_actor(self, claimed: str | None) -> tuple[str, str | None]:
        """(who to record as having acted, the request's own name for them as a note).

        With auth on, the authenticated subject: a name the request body gives proves
        nothing, so it is only kept as a note (when it differs). With auth off there is no
        one but the name the request gives."""
        if self.unrestricted:
            return claimed or self.subject, None
        return self.subject, claimed if claimed and claimed != self.subject else None


ANONYMOUS = Principal(subject="anonymous", method="anonymous", permissions=frozenset())


@dataclass(frozen=True, kw_only=True, slots=True)
class _Key:
    description: str
    permissions: frozenset[str]


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode("utf-8")).digest()


class Authenticator:
    """Verifies credentials against `AuthSettings`; built once per process."""

    def __init__(self, settings: AuthSettings) -> None:
        self.settings = settings
        self.enabled = settings.enabled
        self.api_key_header = settings.api_key_header.lower()
        self.algorithms = list(settings.jwt_allowed_algorithms)
        self._keys: dict[bytes, _Key] = {}
        for index, entry in enumerate(settings.api_keys):
            bad = perms.unknown(entry.permissions)
            if bad and settings.strict_validation:
                raise ConfigError(
                    f"gateway.auth.api_keys[{index}] ({entry.description or 'no description'})"
                    f" has unknown permissions {bad}; known: {sorted(perms.PERMISSIONS)}"
                    " and resource wildcards such as 'tasks:*'")
            granted = frozenset(p for p in entry.permissions if perms.is_known(p))
            label = entry.description or f"api-key-{index}"
            self._keys[_digest(entry.key)] = _Key(description=label, permissions=granted)
        self._jwt_key = _load_public_key(settings) if self.enabled else None
        if self.enabled and self._jwt_key is not None:
            if not self.algorithms:
                raise ConfigError("gateway.auth.jwt_allowed_algorithms must not be empty")
            if any(a.startswith("HS") for a in self.algorithms) and any(
                    a.startswith(_ASYMMETRIC) for a in self.algorithms):
                raise ConfigError("gateway.auth.jwt_allowed_algorithms mixes HMAC and public-key"
                                  " algorithms; choose one family")

    def authenticate(self, headers: Headers) -> Principal:
        """The caller named by `headers` (lower-case keys); AuthError when it cannot be."""
        if not self.enabled:
            return ANONYMOUS
        authorization = headers.get("authorization")
        if authorization:
            scheme, _, token = authorization.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise AuthError("the authorization header must be 'Bearer <token>'")
            return self._verify_jwt(token.strip())
        key = headers.get(self.api_key_header)
        if key:
            return self._verify_api_key(key)
        raise AuthError(f"missing credentials: send 'authorization: Bearer <jwt>' or the"
                        f" '{self.api_key_header}' header")

    def authorize(self, principal: Principal, permission: str) -> None:
        if not principal.allows(permission):
            raise PermissionDenied(
                f"{principal.subject} lacks the '{permission}' permission",
                details={"required_permission": permission})

    def _verify_api_key(self, key: str) -> Principal:
        digest = _digest(key)
        found = None
        for known, entry in self._keys.items():  # compare every key: no early-exit timing
            if hmac.compare_digest(known, digest):
                found = entry
        if found is None:
            raise AuthError("invalid API key")
        return Principal(subject=found.description, method="api_key",
                         permissions=found.permissions)

    def _verify_jwt(self, token: str) -> Principal:
        if self._jwt_key is None:
            raise AuthError("JWT authentication is not configured on this gateway"
                            " (set gateway.auth.jwt_public_key or jwt_public_key_path)")
        claims = _decode(token, self._jwt_key, self.settings, self.algorithms)
        raw = claims.get(self.settings.permissions_claim, [])
        if not isinstance(raw, list) or not all(isinstance(p, str) for p in raw):
            raise AuthError(f"token claim '{self.settings.permissions_claim}' must be a list"
                            " of permission strings")
        bad = perms.unknown(raw)
        if bad and self.settings.strict_validation:
            raise AuthError(f"token carries unknown permissions {bad}")
        subject = claims.get("sub")
        return Principal(subject=str(subject) if subject else "jwt", method="jwt",
                         permissions=frozenset(p for p in raw if perms.is_known(p)))


def _load_public_key(settings: AuthSettings) -> Any:
    """The verification key: a parsed public key, or the secret for HMAC algorithms."""
    text = settings.jwt_public_key
    if not text and settings.jwt_public_key_path:
        path = Path(settings.jwt_public_key_path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read gateway.auth.jwt_public_key_path {path}: {exc}"
                              ) from exc
    if not text:
        return None
    if all(a.startswith("HS") for a in settings.jwt_allowed_algorithms):
        return text
    try:
        return serialization.load_pem_public_key(text.encode("utf-8"))
    except ValueError as exc:
        raise ConfigError(f"gateway.auth JWT public key is not a PEM public key: {exc}") from exc


_JWT_ERRORS: tuple[tuple[type[Exception], str], ...] = (
    (jwt.ExpiredSignatureError, "token has expired"),
    (jwt.ImmatureSignatureError, "token is not valid yet"),
    (jwt.InvalidAudienceError, "token audience is not accepted"),
    (jwt.InvalidIssuerError, "token issuer is not accepted"),
    (jwt.MissingRequiredClaimError, "token lacks a required claim"),
    (jwt.InvalidAlgorithmError, "token algorithm is not allowed"),
    (jwt.InvalidSignatureError, "token signature is invalid"),
    (jwt.DecodeError, "token is malformed"),
)


def _decode(token: str, key: Any, settings: AuthSettings, algorithms: list[str]
            ) -> dict[str, Any]:
    try:
        claims: dict[str, Any] = jwt.decode(
            token, key, algorithms=algorithms, audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
            options={"require": ["exp", "iss", "aud"]})
    except jwt.PyJWTError as exc:
        for kind, message in _JWT_ERRORS:
            if isinstance(exc, kind):
                raise AuthError(f"{message}: {exc}") from exc
        raise AuthError(f"token rejected: {exc}") from exc
    return claims
