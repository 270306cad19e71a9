#!/usr/bin/env python3
"""Set-up and entry point for a fresh machine with only Python 3.11+.

    python3 dev.py demo    # install into .venv, start every service, run sample workflows
    python3 dev.py test    # install into .venv, run lint, types and the whole test suite
    python3 dev.py up      # install, then run all services until Ctrl-C

Each command creates `.venv` (if missing) and installs, editable, the client distribution
(clients/python) and the project with its dev and embedded extras. With no
TASKER_DATABASE_URL set, an embedded PostgreSQL server is started.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / "python"
STAMP = VENV / ".tasker-install-stamp"
# The runtime dependencies are installed at the versions the container image pins, so tests
# run against exactly what ships (and a new upstream release cannot change a test run).
LOCK = ROOT / "deploy" / "requirements.lock"
# The light client is its own distribution; the project depends on it by name, and pip
# takes it from this directory (it is not on an index).
CLIENT = ROOT / "clients" / "python"


def run(*cmd: str | Path, env: dict[str, str] | None = None) -> int:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    return subprocess.call([str(c) for c in cmd], cwd=ROOT, env=env)


def ensure_installed() -> None:
    if sys.version_info < (3, 11):
        sys.exit("Tasker needs Python 3.11 or newer")
    if not PY.exists():
        if run(sys.executable, "-m", "venv", VENV) != 0:
            sys.exit("could not create .venv")
    inputs = (ROOT / "pyproject.toml", CLIENT / "pyproject.toml", LOCK)
    digest = hashlib.sha256(b"".join(path.read_bytes() for path in inputs)).hexdigest()
    if STAMP.exists() and STAMP.read_text() == digest:
        return
    if run(PY, "-m", "pip", "install", "--quiet", "--upgrade", "pip") != 0:
        sys.exit("could not upgrade pip")
    if run(PY, "-m", "pip", "install", "--quiet", "-c", LOCK,
           "-e", CLIENT, "-e", ".[dev,embedded]") != 0:
        sys.exit("could not install the project")
    STAMP.write_text(digest)


def test(extra: list[str]) -> int:
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    steps = [
        [BIN / "ruff", "check", "shared", "services", "clients", "tests", "bench"],
        [BIN / "mypy", "shared", "services", "clients/python/tasker_client"],
    ]
    for step in steps:
        if run(*step, env=env) != 0:
            return 1
    for name in (".coverage",):
        for stale in ROOT.glob(f"{name}*"):
            stale.unlink()
    code = run(PY, "-m", "pytest", "--cov", "--cov-branch", "--cov-report=term",
               "--cov-fail-under=90", "-p", "no:cacheprovider", *extra, env=env)
    return code


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] not in {"demo", "test", "up", "install"}:
        print(__doc__)
        return 2
    command, extra = sys.argv[1], sys.argv[2:]
    ensure_installed()
    if command == "install":
        return 0
    if command == "test":
        return test(extra)
    return run(BIN / "tasker", command, *extra)


if __name__ == "__main__":
    sys.exit(main())
