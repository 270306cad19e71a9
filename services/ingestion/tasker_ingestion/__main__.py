"""Run the ingestion service: `python -m tasker_ingestion`."""

from __future__ import annotations

import sys

from tasker_ingestion.service import serve
from tasker_shared.runtime.entry import run_service


def main() -> int:
    return run_service("ingestion", serve)


if __name__ == "__main__":
    sys.exit(main())
