"""Peer systems of shared/PEERS.md measured in the same run as Tasker (workload_bench.py
--peers): each peer runs the workloads W1-W4 with its own worker as a separate OS process and
returns a bench.report.Outcome per workload, like the Tasker modes.

The peers' packages (PACKAGES) are no dependency of the project; when they cannot be
imported, `ensure_installed` pip-installs them into the running interpreter's environment, in
a directory of their own (SITE, `pip install --target`) that goes at the end of sys.path here and in the
peers' worker processes (bench/peers/launch.py). Installed beside the project's packages
they would change them: Celery 5.7 pins python-dateutil==2.9.0.post0 where the project's
runtime lock (deploy/requirements.lock) pins 4.0.0. The test suite needs none of them."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from typing import Protocol

from bench.report import Outcome
from bench.workloads import Workload

SITE = Path(sys.prefix) / "bench-peers"  # the peers' packages (pip --target)

# name -> (module to import, requirement)
PACKAGES = {
    "procrastinate": ("procrastinate", "procrastinate>=3.10,<3.11"),
    "celery": ("celery", "celery[redis]>=5.7,<5.8"),
}
EXTRA_MODULES = {"celery": ("redis",)}  # celery imports without its redis transport


def activate() -> None:
    """Make the peers' packages importable, after the environment's own."""
    if str(SITE) not in sys.path:
        sys.path.append(str(SITE))


class Peer(Protocol):
    label: str  # the workload table's "submit" column
    description: str  # system, version and configuration, for the peers table

    def run(self, wl: Workload) -> Outcome: ...

    def close(self) -> None: ...


def ensure_installed(names: list[str]) -> None:
    """pip-install the packages of the named peers that cannot be imported (into SITE)."""
    if not names:
        return
    activate()
    missing = []
    for name in names:
        module, requirement = PACKAGES[name]
        modules = (module, *EXTRA_MODULES.get(name, ()))
        if any(importlib.util.find_spec(m) is None for m in modules):
            missing.append(requirement)
    if not missing:
        return
    wanted = [requirement for _, requirement in PACKAGES.values()]  # SITE is replaced whole
    print(f"installing the peers' packages into {SITE}: {' '.join(wanted)}", flush=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--upgrade",
                    "--target", str(SITE), *wanted], check=True)
    importlib.invalidate_caches()


def start(name: str, *, warmup: int, timeout: float, settle: float, log_dir: Path) -> Peer:
    """Start the named peer (its database or Redis and its worker process), warmed up with
    `warmup` linear-4 workflows. Worker logs go to `log_dir`."""
    if name == "procrastinate":
        from bench.peers.procrastinate_peer import ProcrastinatePeer
        return ProcrastinatePeer(warmup=warmup, timeout=timeout, settle=settle,
                                 log_dir=log_dir)
    if name == "celery":
        from bench.peers.celery_peer import CeleryPeer
        return CeleryPeer(warmup=warmup, timeout=timeout, log_dir=log_dir)
    raise ValueError(f"unknown peer {name!r}; choose from {', '.join(PACKAGES)}")
