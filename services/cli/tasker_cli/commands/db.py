"""`tasker db migrate|status`: apply and inspect schema migrations."""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.table import Table

from tasker_shared.db.connect import resolve_database_url
from tasker_shared.db.migrate import migrate, migration_status


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    db = subparsers.add_parser("db", help="database migrations")
    sub = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    run = sub.add_parser("migrate", help="apply pending migrations (idempotent, locked)")
    run.add_argument("--database-url", help="defaults to TASKER_DATABASE_URL / DATABASE_URL")
    run.set_defaults(func=_migrate)
    status = sub.add_parser("status", help="list migrations and when they were applied")
    status.add_argument("--database-url")
    status.set_defaults(func=_status)


def _migrate(args: argparse.Namespace) -> int:
    applied = migrate(resolve_database_url(args.database_url))
    console = Console()
    if applied:
        for m in applied:
            console.print(f"applied {m.version}_{m.name}")
    else:
        console.print("database is up to date")
    return 0


def _status(args: argparse.Namespace) -> int:
    rows = migration_status(resolve_database_url(args.database_url))
    table = Table("version", "name", "applied_at")
    for row in rows:
        table.add_row(row.version, row.name, str(row.applied_at) if row.applied_at else "pending")
    Console().print(table)
    return 0 if all(r.applied_at for r in rows) else 1
