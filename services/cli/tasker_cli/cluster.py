"""Run Tasker's services as separate OS processes: used by `tasker up`, `tasker demo`,
the end-to-end tests and the benchmarks. Each process gets its own health port: a random
free one, or with `preferred_ports` (`tasker up`) the documented default when it is free."""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from tasker_shared.runtime.entry import port_problem
from tasker_shared.runtime.ports import GATEWAY_GRPC_PORT, HEALTH_PORTS

MODULES: dict[str, str] = {
    "ingestion": "tasker_ingestion",
    "results": "tasker_results",
    "finalizer": "tasker_finalizer",
    "gateway": "tasker_gateway",
    "worker": "tasker_worker",
}
START_ORDER = ("ingestion", "results", "finalizer", "worker", "gateway")


def free_port() -> int:
    """A port that is free now, chosen below the kernel's ephemeral range (32768+), so
    outgoing connections of other processes cannot take it before our service binds it."""
    for _ in range(200):
        port = random.randrange(20_000, 32_000)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port found in 20000-32000")


def port_or_free(preferred: int | None) -> int:
    """`preferred` when nothing listens on it (on any interface), else a free port."""
    if preferred and port_problem("", "0.0.0.0", preferred) is None:
        return preferred
    return free_port()


@dataclass(kw_only=True)
class ServiceProcess:
    name: str
    index: int
    env: dict[str, str]
    health_port: int
    popen: subprocess.Popen[bytes] | None = None
    log: IO[bytes] | None = None

    @property
    def label(self) -> str:
        return f"{self.name}-{self.index}"

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen else None

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None


@dataclass(kw_only=True)
class Cluster:
    """A set of service processes sharing one database; see the module docstring."""

    database_url: str
    replicas: Mapping[str, int]
    env: Mapping[str, str] = field(default_factory=dict)
    service_env: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    log_dir: Path | None = None
    preferred_ports: bool = False  # the default ports (gRPC 9190, REST 8080, ...) when free
    processes: list[ServiceProcess] = field(default_factory=list)

    def __post_init__(self) -> None:
        for name in START_ORDER:
            for index in range(self.replicas.get(name, 0)):
                self.processes.append(self._describe(name, index))

    def _describe(self, name: str, index: int) -> ServiceProcess:
        env = dict(os.environ)
        env.update(self.env)
        env.update(self.service_env.get(name, {}))
        env["TASKER_DATABASE_URL"] = self.database_url
        first = self.preferred_ports and index == 0
        port = port_or_free(HEALTH_PORTS.get(name) if first else None)
        if name == "gateway":
            env["TASKER_GATEWAY__REST_PORT"] = str(port)
            if index > 0 or not env.get("TASKER_GATEWAY__GRPC_PORT"):
                env["TASKER_GATEWAY__GRPC_PORT"] = str(
                    port_or_free(GATEWAY_GRPC_PORT if first else None))
        env["TASKER_SERVICE__HEALTH_PORT"] = str(port)
        env["TASKER_SERVICE__HEALTH_HOST"] = "127.0.0.1"
        env["TASKER_SERVICE__INSTANCE_ID"] = f"{name}-{index}"
        return ServiceProcess(name=name, index=index, env=env, health_port=port)

    def get(self, name: str, index: int = 0) -> ServiceProcess:
        for proc in self.processes:
            if proc.name == name and proc.index == index:
                return proc
        raise KeyError(f"{name}-{index}")

    def start(self, *, ready_timeout: float = 60.0) -> Cluster:
        for proc in self.processes:
            self._spawn(proc)
        self.wait_ready(ready_timeout)
        return self

    def _spawn(self, proc: ServiceProcess) -> None:
        stream: Any = None
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            proc.log = open(self.log_dir / f"{proc.label}.log", "ab")  # noqa: SIM115
            stream = proc.log
        proc.popen = subprocess.Popen(
            [sys.executable, "-m", MODULES[proc.name]],
            env=proc.env, stdout=stream, stderr=stream, stdin=subprocess.DEVNULL,
        )

    def wait_ready(self, timeout: float = 60.0, procs: list[ServiceProcess] | None = None) -> None:
        deadline = time.monotonic() + timeout
        for proc in procs or self.processes:
            while True:
                if not proc.alive():
                    raise RuntimeError(f"{proc.label} exited with {proc.popen and proc.popen.poll()}"
                                       f"{self._tail(proc)}")
                if health(proc.health_port, "/health/ready") is not None:
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{proc.label} not ready after {timeout}s{self._tail(proc)}")
                time.sleep(0.05)

    def _tail(self, proc: ServiceProcess) -> str:
        if self.log_dir is None:
            return ""
        path = self.log_dir / f"{proc.label}.log"
        if not path.exists():
            return ""
        return "\n--- log tail ---\n" + path.read_text(errors="replace")[-3000:]

    def kill(self, name: str, index: int = 0, sig: int = signal.SIGKILL) -> None:
        proc = self.get(name, index)
        if proc.popen is not None and proc.alive():
            proc.popen.send_signal(sig)
            proc.popen.wait(timeout=30)

    def restart(self, name: str, index: int = 0, *, ready_timeout: float = 60.0) -> None:
        proc = self.get(name, index)
        if proc.alive():
            self.kill(name, index, signal.SIGTERM)
        self._spawn(proc)
        self.wait_ready(ready_timeout, [proc])

    def stop(self, timeout: float = 20.0) -> dict[str, int | None]:
        """SIGTERM everything, wait up to `timeout`, then SIGKILL what is left."""
        for proc in self.processes:
            if proc.alive():
                assert proc.popen is not None
                proc.popen.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        codes: dict[str, int | None] = {}
        for proc in self.processes:
            if proc.popen is None:
                continue
            try:
                codes[proc.label] = proc.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.popen.kill()
                codes[proc.label] = proc.popen.wait()
            if proc.log is not None:
                proc.log.close()
        return codes

    def __enter__(self) -> Cluster:
        return self.start()

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def health(port: int, path: str) -> dict[str, Any] | None:
    """GET a health path; None unless it answers 200."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=1.0) as resp:
            data: dict[str, Any] = json.loads(resp.read())
            return data
    except (urllib.error.URLError, OSError, ValueError):
        return None
