"""Run the result processing service: `python -m tasker_results`."""

from __future__ import annotations

import sys

from tasker_results.service import serve
from tasker_shared.runtime.entry import run_service


def main() -> int:
    return run_service("results", serve)


if __name__ == "__main__":
    sys.exit(main())
