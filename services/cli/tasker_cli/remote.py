"""What the gRPC commands share: connection flags, where the gateway is, output modes and errors.

The gateway address is `--address`, else TASKER_GATEWAY_ADDRESS, else the gRPC address of a
`tasker up` running on this machine (tasker_cli.localstate), else localhost:9190.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any
from uuid import UUID

from tasker_cli.console import TaskerConsole
from tasker_cli.jsonout import dumps
from tasker_cli.localstate import running_up
from tasker_client import SyncTaskerClient
from tasker_client.config import ADDRESS_ENV, DEFAULT_TIMEOUT_SECONDS
from tasker_shared.errors import TaskerError

Action = Callable[[SyncTaskerClient, argparse.Namespace, "Output"], int]

ADDRESS_HELP = ("gateway gRPC HOST:PORT (grpcs:// for TLS); else TASKER_GATEWAY_ADDRESS, else "
                "the `tasker up` running here, else localhost:9190")


def connection_options() -> argparse.ArgumentParser:
    """A parent parser with the flags every gRPC command takes."""
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("connection")
    group.add_argument("--address", metavar="HOST:PORT", help=ADDRESS_HELP)
    group.add_argument("--token", help="bearer JWT (else TASKER_ORCHESTRATION_AUTH_TOKEN, "
                       "TASKER_AUTH_TOKEN)")
    group.add_argument("--api-key", help="API key (else TASKER_API_KEY)")
    group.add_argument("--api-key-header", metavar="NAME",
                       help="header carrying the API key (else TASKER_API_KEY_HEADER, "
                       "default x-api-key)")
    group.add_argument("--timeout", type=positive_float, metavar="SECONDS",
                       help="deadline per call, retries included (default 30; a watch has "
                       "none unless given)")
    group.add_argument("--json", action="store_true",
                       help="print JSON for scripts: one compact value per line (streams "
                       "are NDJSON), enum values spelled as in REST")
    return parent


def positive_float(text: str) -> float:
    """argparse type: a number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    return value


def uuid_arg(text: str) -> str:
    """argparse type: a UUID, normalised."""
    try:
        return str(UUID(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a UUID: {text!r}") from None


def json_object(text: str) -> dict[str, Any]:
    """argparse type: a JSON object, inline or `@path/to/file.json`."""
    source = text
    if text.startswith("@"):
        try:
            source = Path(text[1:]).read_text(encoding="utf-8")
        except OSError as exc:
            raise argparse.ArgumentTypeError(f"cannot read {text[1:]}: {exc.strerror}") from None
    try:
        value = json.loads(source)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"invalid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("expected a JSON object")
    return value


class Output:
    """Human output through rich, or JSON on stdout with --json (one value per line)."""

    def __init__(self, *, json_mode: bool) -> None:
        self.json = json_mode
        # Data (contexts, results, reasons) may hold "[...]": never read it as markup.
        self.console = TaskerConsole(highlight=False, markup=False)

    def emit(self, value: Any) -> None:
        """Print `value` (messages, dicts, lists of either) as one line of JSON, flushed."""
        print(dumps(value), flush=True)


def gateway_address(args: argparse.Namespace) -> str | None:
    """The address to dial (None: the client's own default, TASKER_GATEWAY_ADDRESS or
    localhost:9190), see the module docstring."""
    if args.address:
        return str(args.address)
    if os.environ.get(ADDRESS_ENV, "").strip():
        return None
    local = running_up()
    return local.grpc_address if local is not None else None


def open_client(args: argparse.Namespace) -> SyncTaskerClient:
    """A SyncTaskerClient from the connection flags (environment for what is not given)."""
    return SyncTaskerClient(
        gateway_address(args),
        token=args.token,
        api_key=args.api_key,
        api_key_header=args.api_key_header,
        timeout=args.timeout or DEFAULT_TIMEOUT_SECONDS,
    )


def fail(exc: TaskerError) -> int:
    """Report a Tasker error as one line on stderr; exit code 1."""
    print(f"error: {exc.code}: {exc.message}", file=sys.stderr)
    return 1


def remote(action: Action) -> Callable[[argparse.Namespace], int]:
    """Wrap a command: open the client, run it, report failures as one line and exit 1."""

    @functools.wraps(action)
    def run(args: argparse.Namespace) -> int:
        out = Output(json_mode=args.json)
        try:
            with open_client(args) as client:
                return action(client, args, out)
        except TaskerError as exc:
            return fail(exc)
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return 130

    return run
