"""The last credential fallback (SPEC 7.4): a short-lived JWT signed with a local private key.

Needs PyJWT with its crypto extra: ``pip install 'tasker-client[signing]'``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from tasker_client.errors import ConfigError

# Every orchestration API resource: whoever holds the signing key may mint any of these.
ORCHESTRATION_PERMISSIONS: tuple[str, ...] = (
    "tasks:*", "steps:*", "dlq:*", "templates:*", "system:*",
)


def sign_token(
    private_key_path: str | Path,
    *,
    issuer: str = "tasker-core",
    audience: str = "tasker-api",
    subject: str = "tasker-client",
    permissions: Sequence[str] = ORCHESTRATION_PERMISSIONS,
    lifetime_seconds: int = 3600,
    algorithm: str = "RS256",
    now: float | None = None,
) -> str:
    """A JWT for the gateway, signed with the PEM private key at `private_key_path`."""
    try:
        import jwt
    except ImportError:
        raise ConfigError(
            "signing a token with TASKER_JWT_PRIVATE_KEY_PATH needs PyJWT: "
            "pip install 'tasker-client[signing]' (or pass a token or an API key)"
        ) from None
    path = Path(private_key_path)
    try:
        key = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read the JWT private key {path}: {exc.strerror}") from None
    issued = int(time.time() if now is None else now)
    claims = {
        "sub": subject,
        "iss": issuer,
        "aud": audience,
        "iat": issued,
        "exp": issued + lifetime_seconds,
        "permissions": list(permissions),
    }
    try:
        return jwt.encode(claims, key, algorithm=algorithm)
    except (ValueError, TypeError, jwt.PyJWTError) as exc:
        raise ConfigError(f"cannot sign a token with {path}: {exc}") from None
