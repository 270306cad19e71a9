"""`tasker serve SERVICE` and `tasker worker ...`: run one service in this process."""

from __future__ import annotations

import argparse
import importlib
from typing import Any

import trio

from tasker_shared.runtime.service import run_until_signalled
from tasker_shared.runtime.settings import load_settings

SERVICES = {
    "ingestion": "tasker_ingestion.service",
    "results": "tasker_results.service",
    "finalizer": "tasker_finalizer.service",
    "gateway": "tasker_gateway.service",
}


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = subparsers.add_parser("serve", help="run one orchestration service")
    serve.add_argument("service", choices=sorted(SERVICES))
    serve.add_argument("--config", help="TOML settings file (else TASKER_CONFIG_PATH)")
    serve.set_defaults(func=_serve)
    worker = subparsers.add_parser("worker", help="run a worker for one or more namespaces")
    worker.add_argument("--namespace", action="append", default=[],
                        help="namespace to serve (repeatable)")
    worker.add_argument("--handlers", action="append", default=[],
                        help="module that defines handlers (repeatable)")
    worker.add_argument("--templates", action="append", default=[],
                        help="template file, directory or glob (repeatable)")
    worker.add_argument("--concurrency", type=int, help="max concurrent handlers")
    worker.add_argument("--config")
    worker.set_defaults(func=_worker)


def _serve(args: argparse.Namespace) -> int:
    module = importlib.import_module(SERVICES[args.service])
    trio.run(run_until_signalled, module.serve, load_settings(config_path=args.config))
    return 0


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
    from tasker_worker.service import serve

    settings = load_settings(config_path=args.config, overrides=worker_overrides(args))
    trio.run(run_until_signalled, serve, settings)
    return 0
