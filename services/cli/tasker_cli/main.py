"""The `tasker` command: one parser, one module per command group under `commands/`, imported
only for the command being run (`tasker --help` imports none of them)."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from tasker_cli.catalog import COMMANDS
from tasker_shared.errors import TaskerError

EXIT_CLOSED_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a reader that went away

EPILOG = ("Exit status: 0 success, 1 failure (one line on stderr), 2 usage error, 130 "
          "interrupted, 141 output closed early; `task watch` adds codes for task outcomes.")



def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser; with `argv`, only the module of the command it names is imported (the
    other commands get a placeholder with their help line). Without: every command."""
    parser = argparse.ArgumentParser(
        prog="tasker", description="Tasker: a PostgreSQL-backed DAG workflow orchestrator.",
        epilog=EPILOG)
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    wanted = set(COMMANDS) if argv is None else _named(argv)
    modules = list(dict.fromkeys(COMMANDS[name].module for name in wanted))
    for module in modules:
        importlib.import_module(module).register(subparsers)
    registered = set(subparsers.choices)
    for name, command in COMMANDS.items():
        if name not in registered:
            subparsers.add_parser(name, help=command.help, add_help=False)
    return parser


def _named(argv: Sequence[str]) -> set[str]:
    """The command `argv` names (its first word that is one), if any."""
    for word in argv:
        if word in COMMANDS:
            return {word}
        if not word.startswith("-"):
            break
    return set()


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser(args_list).parse_args(args_list)
        code: int = args.func(args)
        sys.stdout.flush()  # a closed pipe shows here, not at exit
    except TaskerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        return _closed_pipe()
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # start-up causes (database, ports, settings) as one line
        from tasker_shared.runtime.entry import report_failure

        return report_failure(exc)
    return code


def _closed_pipe() -> int:
    """The reader of stdout went away (`tasker task list | head -1`): stop quietly."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # no second error when Python flushes at exit
    except (OSError, ValueError):
        pass
    return EXIT_CLOSED_PIPE


if __name__ == "__main__":
    sys.exit(main())
