"""`tasker up` (every service and a worker as separate processes) and `tasker demo`
(the same, plus sample workflows with live progress and their results)."""

from __future__ import annotations

import argparse
import json
import time

import psycopg
from psycopg import sql
from rich.console import Console

from tasker_cli.cluster import Cluster
from tasker_shared.db.connect import database_url_from_env, start_embedded_postgres, with_database
from tasker_shared.db.migrate import migrate

SERVICES = ("ingestion", "results", "finalizer", "worker", "gateway")
EXAMPLE_HANDLERS = "tasker_worker.examples.handlers"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    up = subparsers.add_parser("up", help="run every service and a worker as processes")
    _common(up)
    up.set_defaults(func=_up)
    demo = subparsers.add_parser("demo", help="run the services and sample workflows")
    _common(demo)
    demo.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for tasks")
    demo.add_argument("--gateway", metavar="HOST:PORT",
                      help="use services already running behind this gateway (gRPC)")
    demo.set_defaults(func=_demo)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--database-url", help="defaults to TASKER_DATABASE_URL; else embedded")
    parser.add_argument("--replicas", default="1",
                        help="N for every service, or name=N,... (e.g. results=2,worker=2)")
    parser.add_argument("--namespace", default="examples", help="worker namespace")
    parser.add_argument("--handlers", default=EXAMPLE_HANDLERS, help="worker handler module")
    parser.add_argument("--templates", default=None,
                        help="worker template path (default: the sample templates)")
    parser.add_argument("--no-gateway", action="store_true", help="do not start the gateway")
    parser.add_argument("--log-dir", default=None, help="write each process's log to this folder")


def parse_replicas(spec: str, *, gateway: bool = True) -> dict[str, int]:
    counts = dict.fromkeys(SERVICES, 1)
    spec = spec.strip()
    if spec.isdigit():
        counts = dict.fromkeys(SERVICES, int(spec))
    elif spec:
        for part in spec.split(","):
            name, _, value = part.partition("=")
            name = name.strip()
            if name not in counts or not value.strip().isdigit():
                raise SystemExit(f"--replicas: bad entry {part!r} (services: {', '.join(SERVICES)})")
            counts[name] = int(value)
    if not gateway:
        counts["gateway"] = 0
    return counts


def database_for(args: argparse.Namespace, *, fresh: bool) -> str:
    """The URL given (flag or environment), else a database on the embedded server:
    `tasker_demo`, recreated for every demo (`fresh`), or `tasker`, kept between runs."""
    configured = args.database_url or database_url_from_env()
    if configured:
        return configured
    server = start_embedded_postgres()
    name = "tasker_demo" if fresh else "tasker"
    with psycopg.connect(server, autocommit=True) as conn:
        if fresh:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(name)))
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return with_database(server, name)


def _cluster(args: argparse.Namespace, *, quiet: bool, fresh: bool = False) -> Cluster:
    from pathlib import Path

    from tasker_worker.examples import templates_dir

    url = database_for(args, fresh=fresh)
    migrate(url)
    gateway_available = _gateway_available() and not args.no_gateway
    env = {
        "TASKER_WORKER__NAMESPACES": json.dumps([args.namespace]),
        "TASKER_WORKER__HANDLER_MODULES": json.dumps([args.handlers]),
        "TASKER_WORKER__TEMPLATE_PATHS": json.dumps([args.templates or str(templates_dir())]),
    }
    if quiet:
        env["TASKER_SERVICE__LOG_LEVEL"] = "WARNING"
    return Cluster(database_url=url, replicas=parse_replicas(args.replicas,
                                                              gateway=gateway_available),
                   env=env, log_dir=Path(args.log_dir) if args.log_dir else None)


def _gateway_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("tasker_gateway.service") is not None


def _up(args: argparse.Namespace) -> int:
    console = Console(stderr=True)
    cluster = _cluster(args, quiet=False)
    cluster.start()
    for proc in cluster.processes:
        console.print(f"[green]ready[/] {proc.label} pid={proc.pid} health=:{proc.health_port}")
    console.print("all services running; Ctrl-C stops them")
    try:
        while all(p.alive() for p in cluster.processes):
            time.sleep(0.5)
        console.print("[red]a service exited; stopping the rest[/]")
        return 1
    except KeyboardInterrupt:
        console.print("stopping...")
        return 0
    finally:
        cluster.stop()


def _demo(args: argparse.Namespace) -> int:
    from tasker_cli.demo import Backend, GatewayBackend, QueueBackend, run_demo

    console = Console()
    if args.gateway:  # services already running elsewhere (e.g. a cluster): just the workflows
        gateway = GatewayBackend(args.gateway)
        try:
            return 0 if run_demo(gateway, console, timeout=args.timeout) else 1
        finally:
            gateway.close()
    cluster = _cluster(args, quiet=True, fresh=True)
    console.print("[bold]Tasker demo[/]: starting services as separate processes...")
    with cluster:
        for proc in cluster.processes:
            console.print(f"  [green]ready[/] {proc.label} (pid {proc.pid})")
        backend: Backend
        if any(p.name == "gateway" for p in cluster.processes):
            port = cluster.get("gateway").env["TASKER_GATEWAY__GRPC_PORT"]
            console.print(f"submitting through the gateway at localhost:{port} (gRPC)")
            backend = GatewayBackend(f"localhost:{port}")
        else:
            console.print("no gateway: submitting straight onto the ingestion queue")
            backend = QueueBackend(cluster.database_url)
        try:
            ok = run_demo(backend, console, timeout=args.timeout)
        finally:
            backend.close()
    return 0 if ok else 1
