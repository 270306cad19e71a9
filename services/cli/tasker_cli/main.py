"""The `tasker` command: one parser, one module per command group under `commands/`."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from tasker_shared.errors import TaskerError

# Each module defines `register(subparsers)`, adding parsers whose defaults set `func`
# (a callable taking the parsed namespace and returning an exit code).
COMMAND_MODULES: tuple[str, ...] = (
    "tasker_cli.commands.db",
    "tasker_cli.commands.template",
    "tasker_cli.commands.serve",
    "tasker_cli.commands.up",
    "tasker_cli.commands.config",
    "tasker_cli.commands.task",
    "tasker_cli.commands.step",
    "tasker_cli.commands.dlq",
    "tasker_cli.commands.analytics",
    "tasker_cli.commands.openapi", "tasker_cli.commands.auth",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tasker", description="Tasker: a PostgreSQL-backed DAG workflow orchestrator."
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
    except TaskerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
