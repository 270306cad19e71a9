"""Container HEALTHCHECK: GET the readiness endpoint of the service this container runs.

The service is read from PID 1's command line (`tasker serve <name>` or `tasker worker ...`),
its port from the same settings the service uses (TASKER_SERVICE__HEALTH_PORT, or
TASKER_GATEWAY__REST_PORT for the gateway) with tasker_shared.runtime.ports as the default.
Commands that serve no HTTP endpoint (`tasker db migrate`, `tasker demo`) count as healthy.
Standard library only, apart from the port table: the image has no curl.
"""

from __future__ import annotations

import os
import sys
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

from tasker_shared.runtime.ports import HEALTH_PORTS, HEALTH_READY_PATH


def service_of(argv: Sequence[str]) -> str | None:
    """The service a `tasker` command line runs, or None if it serves nothing."""
    for index, token in enumerate(argv):
        if token == "serve" and index + 1 < len(argv):
            return argv[index + 1]
        if token == "worker":
            return "worker"
    return None


def health_url(service: str, env: Mapping[str, str]) -> str:
    """The readiness URL of `service`, honouring port overrides in the environment."""
    if service == "gateway":
        port = env.get("TASKER_GATEWAY__REST_PORT") or HEALTH_PORTS["gateway"]
    else:
        port = env.get("TASKER_SERVICE__HEALTH_PORT") or HEALTH_PORTS[service]
    return f"http://127.0.0.1:{int(port)}{HEALTH_READY_PATH}"


def _pid1_argv() -> list[str]:
    try:
        raw = Path("/proc/1/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    service = service_of(_pid1_argv() if argv is None else argv)
    if service is None or service not in HEALTH_PORTS:
        return 0
    url = health_url(service, os.environ if env is None else env)
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            return 0 if response.status == 200 else 1
    except OSError as exc:  # URLError and HTTPError (any non-2xx) are OSErrors
        print(f"{url}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
