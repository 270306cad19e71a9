"""Run the result processing service: `python -m tasker_results`."""

from __future__ import annotations

import trio

from tasker_results.service import serve
from tasker_shared.runtime.service import run_until_signalled
from tasker_shared.runtime.settings import load_settings


def main() -> None:
    trio.run(run_until_signalled, serve, load_settings())


if __name__ == "__main__":
    main()
