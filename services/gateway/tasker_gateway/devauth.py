"""Development credentials: RSA key pairs, signed JWTs and random API keys (`tasker auth`)."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Sequence

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from tasker_gateway import permissions as perms
from tasker_shared.errors import ValidationError


def generate_key_pair(*, bits: int = 2048) -> tuple[bytes, bytes]:
    """A new RSA key pair as (private PEM, public PEM)."""
    if bits < 2048:
        raise ValidationError(f"RSA keys must have at least 2048 bits, got {bits}")
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    private = key.private_bytes(serialization.Encoding.PEM,
                                serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return private, public


def check_permissions(permissions: Sequence[str]) -> list[str]:
    """`permissions` unchanged, or ValidationError naming the unknown ones."""
    bad = perms.unknown(permissions)
    if bad:
        raise ValidationError(
            f"unknown permissions {bad}; use {sorted(perms.PERMISSIONS)} or a resource"
            " wildcard such as 'tasks:*' (a global '*' is not supported)")
    return list(permissions)


def load_private_key(pem: bytes) -> PrivateKeyTypes:
    """A PEM private key, loaded once (loading validates the key, which is slow)."""
    try:
        return serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise ValidationError(f"not an unencrypted PEM private key: {exc}") from exc


def issue_token(
    private_key: bytes | PrivateKeyTypes,
    *,
    subject: str,
    permissions: Sequence[str],
    issuer: str,
    audience: str,
    expiry_hours: float,
    algorithm: str = "RS256",
    permissions_claim: str = "permissions",
    now: float | None = None,
) -> str:
    """A signed JWT carrying `permissions` for `subject`."""
    if expiry_hours <= 0:
        raise ValidationError(f"expiry_hours must be positive, got {expiry_hours}")
    issued = int(time.time() if now is None else now)
    claims = {
        "sub": subject,
        "iss": issuer,
        "aud": audience,
        "iat": issued,
        "exp": issued + int(expiry_hours * 3600),
        permissions_claim: check_permissions(permissions),
    }
    key = load_private_key(private_key) if isinstance(private_key, bytes) else private_key
    return jwt.encode(claims, key, algorithm=algorithm)  # type: ignore[arg-type]


def new_api_key() -> str:
    """A random API key (256 bits, URL-safe)."""
    return "tk_" + secrets.token_urlsafe(32)


def api_key_toml(key: str, permissions: Sequence[str], description: str) -> str:
    """The settings snippet that makes the gateway accept `key`."""
    return "\n".join([
        "[[gateway.auth.api_keys]]",
        f"key = {json.dumps(key)}",
        f"permissions = {json.dumps(check_permissions(permissions))}",
        f"description = {json.dumps(description)}",
        "",
    ])
