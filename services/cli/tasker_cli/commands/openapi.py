"""`tasker openapi`: write (or check) the REST API's OpenAPI document."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tasker_cli.catalog import command_help


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    cmd = subparsers.add_parser("openapi", help=command_help("openapi"))
    cmd.add_argument("--output", "-o", default="openapi.json",
                     help="file to write ('-' for standard output; default openapi.json)")
    cmd.add_argument("--api-key-header", default="x-api-key",
                     help="API key header named in the security scheme")
    cmd.add_argument("--server", action="append", default=[],
                     help="server URL to list in the document (repeatable)")
    cmd.add_argument("--check", action="store_true",
                     help="exit 1 when the file differs from the generated document")
    cmd.set_defaults(func=_openapi)


def _openapi(args: argparse.Namespace) -> int:
    from tasker_gateway.openapi import build_document, render
    from tasker_gateway.rest.app import all_routes
    from tasker_gateway.usecases.system import VERSION

    text = render(build_document(all_routes(), version=VERSION,
                                 api_key_header=args.api_key_header, servers=args.server))
    if args.output == "-":
        sys.stdout.write(text)
        return 0
    path = Path(args.output)
    if args.check:
        current = path.read_text(encoding="utf-8") if path.exists() else ""
        if current != text:
            print(f"{path} is out of date; run: tasker openapi --output {path}", file=sys.stderr)
            return 1
        return 0
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    print(f"wrote {path}")
    return 0
