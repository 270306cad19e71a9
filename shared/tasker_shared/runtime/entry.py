"""Starting a service from a command line: failures to start are one line naming the cause.

`run_service` loads the settings, checks that the ports the service listens on are free and
that the database answers (retrying for at most `database.connect_timeout_seconds`), then
runs it until SIGTERM/SIGINT. Bad settings, a port in use or an unreachable database print
`error: <service> cannot start: <cause>` and exit 1; `describe_failure` turns the same
causes raised later (inside Trio's exception groups) into one line too.
"""

from __future__ import annotations

import errno
import math
import socket
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from tasker_shared.errors import ConfigError, StoreUnavailable, TaskerError
from tasker_shared.runtime.ports import HEALTH_PORTS

EXIT_FAILED = 1
# Connection errors that waiting cannot fix: report them at once.
_PERMANENT = ("authentication failed", "does not exist", "no pg_hba.conf entry",
              "invalid connection option", "invalid dsn", "invalid uri")


def one_line(text: str) -> str:
    """`text` with its lines joined, for a message that must fit on one line."""
    line = ""
    for part in (p.strip() for p in text.strip().splitlines()):
        if part:
            line += ("" if not line else " " if line.endswith(":") else "; ") + part
    return line


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for sub in exc.exceptions for leaf in _leaves(sub)]
    return [exc]


def describe_failure(exc: BaseException) -> str | None:
    """One line naming a known cause inside `exc` (exception groups unwrapped): bad
    settings, an unreachable database, a port in use; None for anything else (a bug,
    whose traceback is worth showing)."""
    for leaf in _leaves(exc):
        line = _describe(leaf)
        if line is not None:
            return line
    return None


def _describe(exc: BaseException) -> str | None:
    if isinstance(exc, ConfigError):
        return one_line(str(exc))
    if isinstance(exc, StoreUnavailable):
        return f"database unreachable: {one_line(str(exc))}"
    if isinstance(exc, TaskerError):
        return f"{exc.code}: {one_line(str(exc))}"
    if type(exc).__module__.startswith("psycopg") and type(exc).__name__ == "OperationalError":
        return f"database unreachable: {one_line(str(exc))}"
    if isinstance(exc, OSError) and exc.errno in (errno.EADDRINUSE, errno.EACCES,
                                                  errno.EADDRNOTAVAIL):
        return f"cannot listen: {exc.strerror or exc}"
    return None


def listen_ports(name: str, settings: Any) -> list[tuple[str, str, int]]:
    """(setting, host, port) for each port service `name` listens on (0 = any: skipped)."""
    if name == "gateway":  # its REST port also serves /health and /metrics
        gateway = settings.gateway
        found = [("gateway.rest_port", gateway.rest_host, gateway.rest_port),
                 ("gateway.grpc_port", gateway.grpc_host, gateway.grpc_port)]
    else:
        service = settings.service
        port = service.health_port if service.health_port is not None else HEALTH_PORTS.get(name, 0)
        found = [("service.health_port", service.health_host, port)]
    return [entry for entry in found if entry[2]]


def port_problem(setting: str, host: str, port: int) -> str | None:
    """Why the service could not listen on host:port now (None: it can)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers do
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return f"port {port} ({setting}) on {host} is already in use"
            if exc.errno == errno.EACCES:
                return f"no permission to listen on port {port} ({setting})"
            return f"cannot listen on {host}:{port} ({setting}): {exc.strerror or exc}"
    return None


def _where(url: str) -> str:
    from psycopg.conninfo import conninfo_to_dict

    try:
        params = conninfo_to_dict(url)
    except Exception:  # the URL itself is the problem then
        return "the configured database"
    host = params.get("host") or "localhost"
    return f"{host}:{params.get('port') or 5432}/{params.get('dbname') or ''}"


def database_problem(url: str, timeout: float) -> str | None:
    """Why `url` could not be reached within `timeout` seconds (None: it answered)."""
    import psycopg

    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        try:
            # libpq counts whole seconds, at least 2
            with psycopg.connect(url, connect_timeout=max(2, math.floor(remaining))):
                return None
        except psycopg.Error as exc:
            cause = one_line(str(exc)) or type(exc).__name__
        # another attempt (libpq waits at least 2 s) must fit before the deadline
        if any(word in cause.lower() for word in _PERMANENT) or time.monotonic() + 2.5 > deadline:
            return (f"database unreachable at {_where(url)} (database.connect_timeout_seconds "
                    f"= {timeout:g}): {cause}")
        time.sleep(0.5)


def preflight(name: str, settings: Any) -> str | None:
    """The first reason service `name` cannot start with `settings`, if any."""
    for setting, host, port in listen_ports(name, settings):
        problem = port_problem(setting, host, port)
        if problem is not None:
            return problem
    from tasker_shared.db.connect import database_url_from_env

    url = settings.database.url or database_url_from_env()
    if url:  # none: an embedded server is started, which reports its own failures
        return database_problem(url, settings.database.connect_timeout_seconds)
    return None


def run_service(name: str, serve: Callable[..., Awaitable[None]], *,
                config_path: str | None = None,
                overrides: Mapping[str, Any] | None = None) -> int:
    """Run service `name` (its `serve`) until signalled; the process exit status."""
    import trio

    from tasker_shared.runtime.service import run_until_signalled
    from tasker_shared.runtime.settings import load_settings

    try:
        settings = load_settings(config_path=config_path, overrides=dict(overrides or {}))
        problem = preflight(name, settings)
        if problem is not None:
            print(f"error: {name} cannot start: {problem}", file=sys.stderr)
            return EXIT_FAILED
        trio.run(run_until_signalled, serve, settings)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        return report_failure(exc, f"{name}: ")
    return 0


def report_failure(exc: Exception, prefix: str = "") -> int:
    """Print `error: <prefix><cause>` for a known cause (see describe_failure) and return
    the exit status; anything else is raised again, traceback and all."""
    line = describe_failure(exc)
    if line is None:
        raise exc
    print(f"error: {prefix}{line}", file=sys.stderr)
    return EXIT_FAILED
