"""Run a module as a peer's worker process with the peers' packages importable the way the
benchmark process has them (bench.peers.SITE after the environment's own):

    python -m bench.peers.launch celery -A bench.peers.celery_tasks worker ..."""

from __future__ import annotations

import runpy
import sys

from bench.peers import activate

if __name__ == "__main__":
    activate()
    module, sys.argv = sys.argv[1], sys.argv[1:]
    runpy.run_module(module, run_name="__main__", alter_sys=True)
