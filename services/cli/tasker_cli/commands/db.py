"""`tasker db migrate|status|prune`: apply and inspect schema migrations; delete history
older than an age."""

from __future__ import annotations

import argparse

import psycopg
from psycopg.rows import dict_row
from rich.table import Table

from tasker_cli.catalog import DATABASE_URL_HELP, command_help
from tasker_cli.console import TaskerConsole
from tasker_shared.db.connect import resolve_database_url
from tasker_shared.db.migrate import migrate_database, migration_status
from tasker_shared.db.retention import PruneCounts, parse_age, prune_history
from tasker_shared.errors import ConfigError


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    db = subparsers.add_parser("db", help=command_help("db"))
    sub = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    run = sub.add_parser("migrate", help="apply pending migrations (idempotent, locked)")
    run.add_argument("--database-url", help=DATABASE_URL_HELP)
    run.set_defaults(func=_migrate)
    status = sub.add_parser("status", help="list migrations and when they were applied")
    status.add_argument("--database-url", help=DATABASE_URL_HELP)
    status.set_defaults(func=_status)
    prune = sub.add_parser(
        "prune", help="delete finished tasks (and their rows), request outcomes, poison "
                      "records and archived messages older than an age, in batches")
    prune.add_argument("--older-than", required=True, metavar="AGE",
                       help="e.g. 7d, 12h, 90m, 2w (a bare number is days)")
    prune.add_argument("--batch-size", type=int, default=500,
                       help="tasks per transaction (default 500)")
    prune.add_argument("--database-url", help=DATABASE_URL_HELP)
    prune.set_defaults(func=_prune)


def _migrate(args: argparse.Namespace) -> int:
    result = migrate_database(resolve_database_url(args.database_url))
    console = TaskerConsole()
    for m in result.migrations:
        console.print(f"applied {m.version}_{m.name}")
    if result.function_files:
        console.print("applied function files "
                      + ", ".join(f"{f.name}.sql" for f in result.function_files))
    if not result.migrations and not result.function_files:
        console.print("database is up to date")
    return 0


def _status(args: argparse.Namespace) -> int:
    rows = migration_status(resolve_database_url(args.database_url))
    table = Table("version", "name", "applied_at")
    for row in rows:
        table.add_row(row.version, row.name, str(row.applied_at) if row.applied_at else "pending")
    TaskerConsole().print(table)
    return 0 if all(r.applied_at for r in rows) else 1


def _prune(args: argparse.Namespace) -> int:
    age = parse_age(args.older_than)
    if args.batch_size < 1:
        raise ConfigError("--batch-size must be at least 1")
    console = TaskerConsole()
    url = resolve_database_url(args.database_url)
    with psycopg.connect(url, row_factory=dict_row, application_name="tasker-cli-prune") as conn:
        total = prune_history(conn, age, batch_size=args.batch_size)
    console.print(_describe_pruned(total, args.older_than))
    return 0


def _describe_pruned(total: PruneCounts, age: str) -> str:
    return (f"pruned history older than {age}: {total.tasks} tasks ({total.steps} steps),"
            f" {total.outcomes} request outcomes, {total.poison} poison records,"
            f" {total.archived} archived messages")
