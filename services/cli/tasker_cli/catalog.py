"""The `tasker` commands: which module defines each and its one-line help (read without
importing the modules, so `tasker --help` stays fast)."""

from __future__ import annotations

from typing import NamedTuple


class Command(NamedTuple):
    module: str
    help: str


COMMANDS: dict[str, Command] = {
    "db": Command("tasker_cli.commands.db", "database migrations and retention"),
    "template": Command("tasker_cli.commands.template", "task templates"),
    "serve": Command("tasker_cli.commands.serve", "run one orchestration service"),
    "worker": Command("tasker_cli.commands.serve", "run a worker for one or more namespaces"),
    "up": Command("tasker_cli.commands.up",
                  "run every service and a worker as processes; prints their endpoints"),
    "demo": Command("tasker_cli.commands.up", "run the services and sample workflows"),
    "config": Command("tasker_cli.commands.config", "settings reference and validation"),
    "task": Command("tasker_cli.commands.task", "create, inspect, cancel and watch tasks"),
    "step": Command("tasker_cli.commands.step", "inspect and resolve a task's steps"),
    "dlq": Command("tasker_cli.commands.dlq", "investigate tasks in the dead-letter queue"),
    "analytics": Command("tasker_cli.commands.analytics", "performance metrics and bottlenecks"),
    "openapi": Command("tasker_cli.commands.openapi", "write the gateway's OpenAPI document"),
    "auth": Command("tasker_cli.commands.auth", "development keys and tokens for the gateway"),
}


def command_help(name: str) -> str:
    """The help line of a command (what `register` functions pass to add_parser)."""
    return COMMANDS[name].help


DATABASE_URL_HELP = ("database URL (else TASKER_DATABASE_URL or DATABASE_URL, else the embedded "
                     "server)")
