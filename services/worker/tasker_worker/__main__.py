"""Run the worker: `python -m tasker_worker`."""

from __future__ import annotations

import trio

from tasker_shared.runtime.service import run_until_signalled
from tasker_shared.runtime.settings import load_settings
from tasker_worker.service import serve


def main() -> None:
    trio.run(run_until_signalled, serve, load_settings())


if __name__ == "__main__":
    main()
