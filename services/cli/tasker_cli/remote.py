"""What the gRPC commands share: connection flags, the client, output modes and error handling."""

from __future__ import annotations

import argparse
import functools
import json
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from uuid import UUID

import betterproto2
from rich.console import Console

from tasker_client import SyncTaskerClient, to_jsonable
from tasker_client.config import DEFAULT_TIMEOUT_SECONDS
from tasker_shared.errors import TaskerError

Action = Callable[[SyncTaskerClient, argparse.Namespace, "Output"], int]


def connection_options() -> argparse.ArgumentParser:
    """A parent parser with the flags every gRPC command takes."""
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("connection")
    group.add_argument("--address", help="gateway HOST:PORT (else TASKER_GATEWAY_ADDRESS, "
                       "default localhost:9190; grpcs:// for TLS)")
    group.add_argument("--token", help="bearer JWT (else TASKER_ORCHESTRATION_AUTH_TOKEN, "
                       "TASKER_AUTH_TOKEN)")
    group.add_argument("--api-key", help="API key (else TASKER_API_KEY)")
    group.add_argument("--api-key-header", help="API key header (else TASKER_API_KEY_HEADER, "
                       "default x-api-key)")
    group.add_argument("--timeout", type=positive_float, metavar="SECONDS",
                       help="deadline per call, retries included (default 30; watch: none)")
    group.add_argument("--json", action="store_true", help="print JSON for scripts")
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
    """Human output through rich, or JSON on stdout with --json."""

    def __init__(self, *, json_mode: bool) -> None:
        self.json = json_mode
        # Data (contexts, results, reasons) may hold "[...]": never read it as markup.
        self.console = Console(highlight=False, markup=False)

    def emit(self, value: Any) -> None:
        """Print `value` (messages, dicts, lists of either) as indented JSON."""
        print(json.dumps(jsonable(value), indent=2, sort_keys=False, default=str))

    def emit_line(self, value: Any) -> None:
        """Print `value` as one compact JSON line (streams), flushed at once."""
        print(json.dumps(jsonable(value), default=str), flush=True)


def jsonable(value: Any) -> Any:
    """Messages become dicts (proto3 JSON, .proto names); containers are converted inside."""
    if isinstance(value, betterproto2.Message):
        return to_jsonable(value)
    if isinstance(value, dict):
        return {key: jsonable(item) for key, item in value.items()}
    if isinstance(value, Iterable) and not isinstance(value, str | bytes):
        return [jsonable(item) for item in value]
    return value


def open_client(args: argparse.Namespace) -> SyncTaskerClient:
    """A SyncTaskerClient from the connection flags (environment for what is not given)."""
    return SyncTaskerClient(
        args.address,
        token=args.token,
        api_key=args.api_key,
        api_key_header=args.api_key_header,
        timeout=args.timeout or DEFAULT_TIMEOUT_SECONDS,
    )


def remote(action: Action) -> Callable[[argparse.Namespace], int]:
    """Wrap a command: open the client, run it, report failures as one line and exit 1."""

    @functools.wraps(action)
    def run(args: argparse.Namespace) -> int:
        out = Output(json_mode=args.json)
        try:
            with open_client(args) as client:
                return action(client, args, out)
        except TaskerError as exc:
            print(f"error: {exc.code}: {exc.message}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return 130

    return run
