"""Run the finalization service: `python -m tasker_finalizer`."""

from __future__ import annotations

import sys

from tasker_finalizer.service import serve
from tasker_shared.runtime.entry import run_service


def main() -> int:
    return run_service("finalizer", serve)


if __name__ == "__main__":
    sys.exit(main())
