"""`tasker serve SERVICE` and `tasker worker ...`: run one service in this process."""

from __future__ import annotations

import argparse
import importlib
from typing import Any

from tasker_cli.catalog import command_help
from tasker_shared.runtime.entry import run_service

SERVICES = {
    "ingestion": "tasker_ingestion.service",
    "results": "tasker_results.service",
    "finalizer": "tasker_finalizer.service",
    "gateway": "tasker_gateway.service",
}


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = subparsers.add_parser("serve", help=command_help("serve"))
    serve.add_argument("service", choices=sorted(SERVICES), help="the service to run")
    serve.add_argument("--config", help="TOML settings file (else TASKER_CONFIG_PATH)")
    serve.set_defaults(func=_serve)
    worker = subparsers.add_parser("worker", help=command_help("worker"))
    worker.add_argument("--namespace", action="append", default=[],
                        help="namespace to serve (repeatable)")
    worker.add_argument("--handlers", action="append", default=[],
                        help="module that defines handlers (repeatable)")
    worker.add_argument("--templates", action="append", default=[],
                        help="template file, directory or glob (repeatable)")
    worker.add_argument("--concurrency", type=int, help="max concurrent handlers")
    worker.add_argument("--config", help="TOML settings file (else TASKER_CONFIG_PATH)")
    worker.add_argument("--check", action="store_true",
                        help="only check the handlers: list those the templates name but "
                             "that do not resolve, and registered ones no template uses; "
                             "exit 1 if a step has no usable handler")
    worker.set_defaults(func=_worker)


def _serve(args: argparse.Namespace) -> int:
    module = importlib.import_module(SERVICES[args.service])
    return run_service(args.service, module.serve, config_path=args.config)


def worker_overrides(args: argparse.Namespace) -> dict[str, Any]:
    worker: dict[str, Any] = {}
    if args.namespace:
        worker["namespaces"] = args.namespace
    if args.handlers:
        worker["handler_modules"] = args.handlers
    if args.templates:
        worker["template_paths"] = args.templates
    if args.concurrency:
        worker["max_concurrent_handlers"] = args.concurrency
    return {"worker": worker} if worker else {}


def _worker(args: argparse.Namespace) -> int:
    if args.check:
        return _check(args)
    from tasker_worker.service import serve

    return run_service("worker", serve, config_path=args.config,
                       overrides=worker_overrides(args))


def _check(args: argparse.Namespace) -> int:
    from tasker_shared.runtime.settings import load_settings
    from tasker_worker.runtime.handler_check import check_configured

    found = check_configured(load_settings(config_path=args.config,
                                           overrides=worker_overrides(args)))
    for line in found.lines():
        print(line)
    return 0 if found.ok else 1
