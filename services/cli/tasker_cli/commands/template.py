"""`tasker template validate|register PATH...` (local files) and `list|show` (over gRPC)."""

from __future__ import annotations

import argparse
import sys

import psycopg
from psycopg.rows import dict_row

from tasker_cli.catalog import DATABASE_URL_HELP, command_help
from tasker_cli.console import TaskerConsole
from tasker_cli.remote import Output, connection_options, remote
from tasker_cli.render import template_steps, template_table
from tasker_client import SyncTaskerClient
from tasker_shared.db.connect import resolve_database_url
from tasker_shared.errors import TemplateError
from tasker_shared.store.templates import register_template
from tasker_shared.templates_io import find_template_files, load_template_file


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    tpl = subparsers.add_parser("template", help=command_help("template"))
    sub = tpl.add_subparsers(dest="template_command", required=True, metavar="ACTION")
    validate = sub.add_parser("validate", help="validate template files (files, dirs, globs)")
    validate.add_argument("paths", nargs="+", help="template files, directories or globs")
    validate.set_defaults(func=_validate)
    reg = sub.add_parser("register", help="validate and register template files")
    reg.add_argument("paths", nargs="+", help="template files, directories or globs")
    reg.add_argument("--database-url", help=DATABASE_URL_HELP)
    reg.set_defaults(func=_register)
    common = [connection_options()]
    lst = sub.add_parser("list", parents=common, help="templates known to the gateway")
    lst.add_argument("--namespace", help="only templates of this namespace")
    lst.set_defaults(func=remote(_list))
    show = sub.add_parser("show", parents=common, help="one template and its steps")
    show.add_argument("namespace", help="template namespace")
    show.add_argument("name", help="template name")
    show.add_argument("version", help="template version")
    show.set_defaults(func=remote(_show))


def _load(paths: list[str]) -> tuple[list[object], list[str]]:
    files = find_template_files(paths)
    problems: list[str] = []
    loaded: list[object] = []
    if not files:
        problems.append(f"no template files found in {', '.join(paths)}")
    for path in files:
        try:
            loaded.append(load_template_file(path))
        except TemplateError as exc:
            problems.extend(exc.problems)
    return loaded, problems


def _validate(args: argparse.Namespace) -> int:
    loaded, problems = _load(args.paths)
    console = TaskerConsole()
    for template in loaded:
        console.print(f"ok  {template.source}  ({template.key}, {len(template.steps)} steps)")  # type: ignore[attr-defined]
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


def _register(args: argparse.Namespace) -> int:
    loaded, problems = _load(args.paths)
    if problems:
        for problem in problems:
            print(problem, file=sys.stderr)
        return 1
    url = resolve_database_url(args.database_url)
    console = TaskerConsole()
    with psycopg.connect(url, row_factory=dict_row) as conn:
        for template in loaded:
            uuid = register_template(conn, template)  # type: ignore[arg-type]
            console.print(f"registered {template.key} as {uuid}")  # type: ignore[attr-defined]
    return 0


def _list(client: SyncTaskerClient, args: argparse.Namespace, out: Output) -> int:
    catalog = client.list_templates(namespace=args.namespace)
    if out.json:
        out.emit({"templates": catalog.templates, "namespaces": catalog.namespaces})
    else:
        out.console.print(template_table(catalog.templates))
    return 0


def _show(client: SyncTaskerClient, args: argparse.Namespace, out: Output) -> int:
    template = client.get_template(args.namespace, args.name, args.version)
    if out.json:
        out.emit(template)
    else:
        out.console.print(template_steps(template))
    return 0
