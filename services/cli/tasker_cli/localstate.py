"""Where a running `tasker up` can be reached: one small JSON file per `up` process.

`tasker up` writes `up-<pid>.json` (its gRPC address, REST URL and health URLs) into the
state directory and removes it when it stops; a command given no gateway address (no
`--address`, no TASKER_GATEWAY_ADDRESS) reads the newest file whose process is alive.
The directory is TASKER_STATE_DIR, else $XDG_RUNTIME_DIR/tasker, else
$XDG_CACHE_HOME/tasker (default ~/.cache/tasker).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

STATE_DIR_ENV = "TASKER_STATE_DIR"
PREFIX = "up-"


def state_dir() -> Path:
    """The directory of `tasker up` state files (see the module docstring)."""
    explicit = os.environ.get(STATE_DIR_ENV, "").strip()
    if explicit:
        return Path(explicit)
    runtime = os.environ.get("XDG_RUNTIME_DIR", "").strip()
    if runtime and os.path.isdir(runtime) and os.access(runtime, os.W_OK):
        return Path(runtime) / "tasker"
    cache = os.environ.get("XDG_CACHE_HOME", "").strip() or os.path.join(
        os.path.expanduser("~"), ".cache")
    return Path(cache) / "tasker"


@dataclass(frozen=True, kw_only=True, slots=True)
class UpState:
    """What one running `tasker up` serves."""

    pid: int
    grpc_address: str
    rest_url: str
    health: dict[str, str] = field(default_factory=dict)  # process label -> readiness URL
    started_at: float = 0.0

    @classmethod
    def from_json(cls, data: Any) -> UpState | None:
        """The state a file holds; None when it is not a state file of this shape."""
        if not isinstance(data, dict):
            return None
        pid, grpc, rest = data.get("pid"), data.get("grpc_address"), data.get("rest_url")
        health = data.get("health", {})
        started = data.get("started_at", 0.0)
        if not (isinstance(pid, int) and isinstance(grpc, str) and isinstance(rest, str)
                and isinstance(health, dict) and isinstance(started, int | float)):
            return None
        return cls(pid=pid, grpc_address=grpc, rest_url=rest,
                   health={str(k): str(v) for k, v in health.items()}, started_at=started)


def write_state(state: UpState, directory: Path | None = None) -> Path:
    """Write (atomically) the state file of `state.pid`; returns its path."""
    folder = directory or state_dir()
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = folder / f"{PREFIX}{state.pid}.json"
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".up-", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(asdict(state), handle)
    os.replace(tmp, path)
    return path


def remove_state(path: Path) -> None:
    """Remove a state file (gone already is fine)."""
    try:
        path.unlink()
    except FileNotFoundError:
        pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def running_up(directory: Path | None = None) -> UpState | None:
    """The newest `tasker up` whose process is alive (stale files are removed)."""
    folder = directory or state_dir()
    try:
        paths = sorted(folder.glob(f"{PREFIX}*.json"))
    except OSError:
        return None
    found: list[UpState] = []
    for path in paths:
        try:
            state = UpState.from_json(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            continue
        if state is None:
            continue
        if not _alive(state.pid):
            remove_state(path)
            continue
        found.append(state)
    return max(found, key=lambda s: s.started_at) if found else None
