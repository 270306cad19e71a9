"""`tasker template validate|register PATH...`: check and register template files."""

from __future__ import annotations

import argparse
import sys

import psycopg
from psycopg.rows import dict_row
from rich.console import Console
from tasker_shared.db.connect import resolve_database_url
from tasker_shared.errors import TemplateError
from tasker_shared.store.templates import register_template
from tasker_shared.templates_io import find_template_files, load_template_file


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    tpl = subparsers.add_parser("template", help="task templates")
    sub = tpl.add_subparsers(dest="template_command", required=True, metavar="ACTION")
    validate = sub.add_parser("validate", help="validate template files (files, dirs, globs)")
    validate.add_argument("paths", nargs="+")
    validate.set_defaults(func=_validate)
    reg = sub.add_parser("register", help="validate and register template files")
    reg.add_argument("paths", nargs="+")
    reg.add_argument("--database-url")
    reg.set_defaults(func=_register)


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
    console = Console()
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
    console = Console()
    with psycopg.connect(url, row_factory=dict_row) as conn:
        for template in loaded:
            uuid = register_template(conn, template)  # type: ignore[arg-type]
            console.print(f"registered {template.key} as {uuid}")  # type: ignore[attr-defined]
    return 0
