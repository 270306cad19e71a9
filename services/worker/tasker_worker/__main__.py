"""Run the worker: `python -m tasker_worker`."""

from __future__ import annotations

import sys

from tasker_shared.runtime.entry import run_service
from tasker_worker.service import serve


def main() -> int:
    return run_service("worker", serve)


if __name__ == "__main__":
    sys.exit(main())
