"""The CLI and the services as real processes: `tasker up` prints its endpoints and the other
commands find it with no flags; start-up failures are one line; a closed pipe is no error."""

from __future__ import annotations

import errno
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

from tasker_cli.cluster import port_or_free
from tasker_shared.errors import ConfigError, StoreUnavailable
from tasker_shared.runtime.entry import describe_failure
from tests.client.conftest import Stack, free_port

pytestmark = pytest.mark.usefixtures("wide_terminal")


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("TASKER_") and k not in ("DATABASE_URL", "COVERAGE_PROCESS_START")}
    env.update(COLUMNS="200", PYTHONUNBUFFERED="1", **extra)
    return env


def closed_pipe_run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
    """Run `python -m tasker_cli ARGV` with a stdout whose reader has already gone."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run([sys.executable, "-m", "tasker_cli", *argv], stdout=write_end,
                              stderr=subprocess.PIPE, env=env, timeout=60, check=False)
    finally:
        os.close(write_end)


def test_closed_pipe_exits_quietly() -> None:
    result = closed_pipe_run(["config", "reference"], clean_env())
    assert result.returncode == 141
    assert result.stderr == b""


async def test_closed_pipe_with_a_remote_command(stack: Stack) -> None:
    argv = ["task", "list", "--address", stack.address]
    result = await trio.to_thread.run_sync(closed_pipe_run, argv, clean_env())
    assert result.returncode == 141
    assert result.stderr == b""


def start_failure(module: str, env: dict[str, str]) -> str:
    result = subprocess.run([sys.executable, "-m", module], capture_output=True, text=True,
                            env=env, timeout=60, check=False)
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.fixture
def listening() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_port_in_use_is_one_line(db_url: str, listening: int) -> None:
    line = start_failure("tasker_results", clean_env(
        TASKER_DATABASE_URL=db_url, TASKER_SERVICE__HEALTH_HOST="127.0.0.1",
        TASKER_SERVICE__HEALTH_PORT=str(listening)))
    assert line == (f"error: results cannot start: port {listening} (service.health_port) on "
                    "127.0.0.1 is already in use")


def test_gateway_port_in_use_is_one_line(db_url: str, listening: int) -> None:
    line = start_failure("tasker_gateway", clean_env(
        TASKER_DATABASE_URL=db_url, TASKER_GATEWAY__REST_HOST="127.0.0.1",
        TASKER_GATEWAY__REST_PORT=str(free_port()), TASKER_GATEWAY__GRPC_HOST="127.0.0.1",
        TASKER_GATEWAY__GRPC_PORT=str(listening)))
    assert line.endswith(f"port {listening} (gateway.grpc_port) on 127.0.0.1 is already in use")


def test_unreachable_database_is_one_line() -> None:
    port = free_port()
    line = start_failure("tasker_ingestion", clean_env(
        TASKER_DATABASE_URL=f"postgresql://postgres@127.0.0.1:{port}/nowhere",
        TASKER_DATABASE__CONNECT_TIMEOUT_SECONDS="2", TASKER_SERVICE__HEALTH_PORT="0"))
    assert line.startswith(f"error: ingestion cannot start: database unreachable at "
                           f"127.0.0.1:{port}/nowhere (database.connect_timeout_seconds = 2): ")
    assert "Connection refused" in line


def test_bad_settings_are_one_line() -> None:
    line = start_failure("tasker_worker", clean_env(TASKER_WORKER__MAX_CONCURRENT_HANDLERS="lots"))
    assert line.startswith("error: worker: invalid settings (environment): "
                           "worker.max_concurrent_handlers: ")


def test_failures_inside_exception_groups_are_described() -> None:
    in_use = OSError(errno.EADDRINUSE, "Address already in use")
    group = ExceptionGroup("nursery", [ExceptionGroup("inner", [in_use])])
    assert describe_failure(group) == "cannot listen: Address already in use"
    assert describe_failure(ExceptionGroup("n", [StoreUnavailable("gone")])) == (
        "database unreachable: gone")
    assert describe_failure(ConfigError("invalid settings (file):\n  a.b: bad")) == (
        "invalid settings (file): a.b: bad")
    assert describe_failure(ExceptionGroup("n", [ValueError("a bug")])) is None


def test_preferred_port_or_a_free_one(listening: int) -> None:
    assert port_or_free(listening) != listening
    port = free_port()
    assert port_or_free(port) == port


@pytest.mark.e2e
def test_up_prints_endpoints_and_commands_find_it(db_url: str, tmp_path: Path) -> None:
    env = clean_env(TASKER_STATE_DIR=str(tmp_path), TASKER_SERVICE__LOG_LEVEL="WARNING",
                    TASKER_DATABASE__POOL_MAX="3")
    up = subprocess.Popen([sys.executable, "-m", "tasker_cli", "up", "--database-url", db_url,
                           "--log-dir", str(tmp_path / "logs")],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    assert up.stdout is not None
    try:
        lines = []
        for line in up.stdout:
            lines.append(line.rstrip())
            if line.startswith("Ctrl-C"):
                break
        text = "\n".join(lines)
        assert lines[0] == "tasker up: every service is ready", text + (up.stderr.read()
                                                                        if up.stderr else "")
        grpc = next(line for line in lines if line.startswith("gRPC")).split()[1]
        assert next(line for line in lines if line.startswith("REST")).split()[1].startswith(
            "http://127.0.0.1:")
        for name in ("gateway-0", "ingestion-0", "results-0", "finalizer-0", "worker-0"):
            assert f"health   {name}" in text
        assert (tmp_path / f"up-{up.pid}.json").exists()

        listed = subprocess.run([sys.executable, "-m", "tasker_cli", "template", "list",
                                 "--json"], capture_output=True, text=True, env=env,
                                timeout=60, check=False)
        assert listed.returncode == 0, listed.stderr
        assert '"name":"linear_workflow"' in listed.stdout
        elsewhere = subprocess.run(
            [sys.executable, "-m", "tasker_cli", "task", "list", "--timeout", "2"],
            capture_output=True, text=True, timeout=60, check=False,
            env={**env, "TASKER_GATEWAY_ADDRESS": f"127.0.0.1:{free_port()}"})
        assert elsewhere.returncode == 1  # the environment wins over the state file
        assert grpc.startswith("127.0.0.1:")
    finally:
        up.send_signal(signal.SIGTERM)  # like Ctrl-C: the services stop, the file goes
        code = up.wait(timeout=60)
    assert code == 0
    assert not (tmp_path / f"up-{up.pid}.json").exists()
