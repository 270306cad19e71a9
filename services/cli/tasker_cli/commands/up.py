"""`tasker up` (every service and a worker as separate processes, on the default ports when
free, its endpoints printed and recorded for the other commands) and `tasker demo` (the
same, plus sample workflows with live progress and their results)."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from types import FrameType

import psycopg
from psycopg import sql

from tasker_cli.catalog import command_help
from tasker_cli.cluster import Cluster, ServiceProcess
from tasker_cli.console import TaskerConsole
from tasker_cli.localstate import UpState, remove_state, write_state
from tasker_shared.db.connect import database_url_from_env, start_embedded_postgres, with_database
from tasker_shared.db.migrate import migrate
from tasker_shared.errors import StoreUnavailable
from tasker_shared.runtime.entry import database_problem
from tasker_shared.runtime.settings import load_settings

SERVICES = ("ingestion", "results", "finalizer", "worker", "gateway")
EXAMPLE_HANDLERS = "tasker_worker.examples.handlers"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    up = subparsers.add_parser("up", help=command_help("up"))
    _common(up)
    up.set_defaults(func=_up)
    demo = subparsers.add_parser("demo", help=command_help("demo"))
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
    parser.add_argument("--log-dir", default=None,
                        help="write each process's log to this folder (default: this terminal)")


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
        timeout = load_settings().database.connect_timeout_seconds
        problem = database_problem(configured, timeout)
        if problem is not None:
            raise StoreUnavailable(problem)
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


def _cluster(args: argparse.Namespace, *, quiet: bool, fresh: bool = False,
             preferred_ports: bool = False) -> Cluster:
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
                   env=env, log_dir=Path(args.log_dir) if args.log_dir else None,
                   preferred_ports=preferred_ports)


def _gateway_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("tasker_gateway.service") is not None


def up_state(cluster: Cluster) -> UpState | None:
    """Where this `up` serves (None without a gateway)."""
    gateways = [p for p in cluster.processes if p.name == "gateway"]
    if not gateways:
        return None
    gateway = gateways[0].env
    return UpState(
        pid=os.getpid(), started_at=time.time(),
        grpc_address=f"127.0.0.1:{gateway['TASKER_GATEWAY__GRPC_PORT']}",
        rest_url=f"http://127.0.0.1:{gateway['TASKER_GATEWAY__REST_PORT']}",
        health={p.label: _health_url(p) for p in cluster.processes})


def _health_url(proc: ServiceProcess) -> str:
    return f"http://127.0.0.1:{proc.health_port}/health/ready"


def endpoint_lines(cluster: Cluster, state: UpState | None) -> list[str]:
    """What `up` prints once every process is ready."""
    lines = []
    if state is not None:
        lines += [f"gRPC     {state.grpc_address}   (tasker task ... reaches it with no flags)",
                  f"REST     {state.rest_url}   (API docs {state.rest_url}/api-docs/ui, "
                  f"OpenAPI {state.rest_url}/api-docs/openapi.json)"]
    for proc in cluster.processes:
        metrics = _health_url(proc).replace("/health/ready", "/metrics")
        lines.append(f"health   {proc.label:<12} {_health_url(proc)}   metrics {metrics}   "
                     f"pid {proc.pid}")
    return lines


def _start_failure(exc: Exception) -> str:
    """One line for a process that died or was not ready in time (its log tail left out:
    its own one-line error went to this terminal, or is the last line of its log)."""
    first, _, tail = str(exc).partition("\n--- log tail ---\n")
    last = [line for line in tail.splitlines() if line.strip()]
    return f"{first.strip()} during start-up" + (f": {last[-1].strip()}" if last else "")


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def stop_on_sigterm() -> None:
    """SIGTERM (a supervisor, `timeout`, `kill`) stops the services like Ctrl-C does."""
    signal.signal(signal.SIGTERM, _interrupt)


def _up(args: argparse.Namespace) -> int:
    stop_on_sigterm()
    cluster = _cluster(args, quiet=False, preferred_ports=True)
    try:
        cluster.start()
    except (RuntimeError, TimeoutError) as exc:
        cluster.stop()
        print(f"error: {_start_failure(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        cluster.stop()
        return 130
    state = up_state(cluster)
    path = write_state(state) if state is not None else None
    print("\n".join(["tasker up: every service is ready", *endpoint_lines(cluster, state),
                     "Ctrl-C stops them"]), flush=True)
    try:
        while all(p.alive() for p in cluster.processes):
            time.sleep(0.5)
        dead = next(p for p in cluster.processes if not p.alive())
        code = dead.popen.poll() if dead.popen else None
        print(f"error: {dead.label} exited with {code}; stopping the rest", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("stopping...", file=sys.stderr)
        return 0
    finally:
        if path is not None:
            remove_state(path)
        cluster.stop()


def _demo(args: argparse.Namespace) -> int:
    from tasker_cli.demo import Backend, GatewayBackend, QueueBackend, run_demo

    stop_on_sigterm()
    console = TaskerConsole()
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
