"""`tasker auth keygen|token|api-key`: development credentials for the gateway."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from tasker_cli.catalog import command_help
from tasker_shared.errors import TaskerError
from tasker_shared.runtime.settings import load_settings


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    auth = subparsers.add_parser("auth", help=command_help("auth"))
    sub = auth.add_subparsers(dest="auth_command", required=True, metavar="ACTION")
    keygen = sub.add_parser("keygen", help="write an RSA key pair for signing JWTs")
    keygen.add_argument("--out-dir", default=".", help="directory for the two PEM files")
    keygen.add_argument("--name", default="jwt", help="file prefix (NAME-private.pem, ...)")
    keygen.add_argument("--bits", type=int, default=2048, help="RSA key size (default 2048)")
    keygen.add_argument("--force", action="store_true", help="overwrite existing files")
    keygen.set_defaults(func=_keygen)
    token = sub.add_parser("token", help="print a signed JWT (RS256)")
    token.add_argument("--permissions", "-p", action="append", required=True,
                       help="permission(s), comma separated or repeated (e.g. tasks:*)")
    token.add_argument("--private-key", help="PEM file (default gateway.auth.jwt_private_key_path)")
    token.add_argument("--subject", default="developer", help="the sub claim (default developer)")
    token.add_argument("--issuer", help="default gateway.auth.jwt_issuer")
    token.add_argument("--audience", help="default gateway.auth.jwt_audience")
    token.add_argument("--expiry-hours", type=float,
                       help="default gateway.auth.jwt_token_expiry_hours")
    token.add_argument("--config", help="TOML settings file (else TASKER_CONFIG_PATH)")
    token.set_defaults(func=_token)
    key = sub.add_parser("api-key", help="print a random API key and its settings snippet")
    key.add_argument("--permissions", "-p", action="append", required=True,
                     help="permission(s), comma separated or repeated (e.g. tasks:*)")
    key.add_argument("--description", default="development key",
                     help="description in the settings snippet")
    key.set_defaults(func=_api_key)


def _permissions(values: list[str]) -> list[str]:
    return [p.strip() for value in values for p in value.split(",") if p.strip()]


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def _keygen(args: argparse.Namespace) -> int:
    from tasker_gateway.devauth import generate_key_pair

    out = Path(args.out_dir)
    private_path, public_path = out / f"{args.name}-private.pem", out / f"{args.name}-public.pem"
    existing = [p for p in (private_path, public_path) if p.exists()]
    if existing and not args.force:
        return _fail(f"{existing[0]} exists; pass --force to overwrite")
    try:
        private, public = generate_key_pair(bits=args.bits)
    except TaskerError as exc:
        return _fail(str(exc))
    out.mkdir(parents=True, exist_ok=True)
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(private)
    public_path.write_bytes(public)
    print(f"wrote {private_path} (keep it secret) and {public_path}")
    print("gateway settings:\n[gateway.auth]\nenabled = true\n"
          f'jwt_public_key_path = "{public_path.resolve()}"\n'
          f'jwt_private_key_path = "{private_path.resolve()}"')
    return 0


def _token(args: argparse.Namespace) -> int:
    from tasker_gateway.devauth import issue_token

    auth = load_settings(config_path=args.config).gateway.auth
    key_path = args.private_key or auth.jwt_private_key_path
    if not key_path:
        return _fail("no private key: pass --private-key or set gateway.auth.jwt_private_key_path")
    try:
        pem = Path(key_path).read_bytes()
        token = issue_token(
            pem, subject=args.subject, permissions=_permissions(args.permissions),
            issuer=args.issuer or auth.jwt_issuer, audience=args.audience or auth.jwt_audience,
            expiry_hours=args.expiry_hours or auth.jwt_token_expiry_hours,
            permissions_claim=auth.permissions_claim)
    except OSError as exc:
        return _fail(f"cannot read {key_path}: {exc}")
    except TaskerError as exc:
        return _fail(str(exc))
    print(token)
    return 0


def _api_key(args: argparse.Namespace) -> int:
    from tasker_gateway.devauth import api_key_toml, new_api_key

    key = new_api_key()
    try:
        snippet = api_key_toml(key, _permissions(args.permissions), args.description)
    except TaskerError as exc:
        return _fail(str(exc))
    print(key)
    print(f"\n# add to the gateway settings:\n{snippet}", end="")
    return 0
