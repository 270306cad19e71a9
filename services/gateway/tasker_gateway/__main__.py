"""Run the gateway service: `python -m tasker_gateway` (or `tasker serve gateway`)."""

from __future__ import annotations

import sys

from tasker_gateway.service import serve
from tasker_shared.runtime.entry import run_service


def main() -> int:
    return run_service("gateway", serve)


if __name__ == "__main__":
    sys.exit(main())
