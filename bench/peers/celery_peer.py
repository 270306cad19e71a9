"""Celery 5.7 + Redis as a peer: a private redis-server (/usr/bin/redis-server) on a free
loopback port with persistence off (`--save '' --appendonly no`), broker and result backend
both; one worker process (`celery worker`, prefork pool, concurrency 8, early acks: Celery's
default) on bench/peers/celery_tasks.py. Workflows are submitted from the benchmark process,
one `apply_async` each (latency from just before that call).

- linear-4: `chain(step, step, step, step)`, each getting the previous one's result.
- diamond: `chain(step, group(step, step), join)`, which Celery turns into a chord (the Redis
  backend counts the header's results and sends the join when the last arrives).
- fan-out: the same with a group of `width` steps.

Completion: the result backend's `date_done` of the workflow's last task (the chain's or
chord body's result: set by the worker process when it stores the result in Redis; the
worker's clock, the same machine). Nothing is durable: Redis keeps it in memory only.
Cost: CPU of the worker (with its prefork children) and of redis-server; no PostgreSQL."""

from __future__ import annotations

import gc
import time
from contextlib import ExitStack
from importlib.metadata import version
from pathlib import Path

import redis
from celery import chain, group
from celery.result import AsyncResult

from bench.peers.base import (
    PeerBase,
    check_alive,
    spawn,
    stop,
    worker_command,
)
from bench.peers.celery_tasks import CONCURRENCY, REDIS_ENV, make_app
from tasker_cli.cluster import free_port

REDIS_SERVER = "/usr/bin/redis-server"


class CeleryPeer(PeerBase):
    label = "celery"

    def __init__(self, *, warmup: int, timeout: float, log_dir: Path) -> None:
        super().__init__(timeout=timeout, settle=0.0)
        self.description = (f"Celery {version('celery')} + Redis, prefork "
                            f"{CONCURRENCY} (chain / chord)")
        self._stack = ExitStack()
        self._results: dict[str, AsyncResult] = {}
        try:
            port = free_port()
            url = f"redis://127.0.0.1:{port}/0"
            self.redis_log = log_dir / "celery-redis.log"
            self.redis = spawn([REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1",
                                "--save", "", "--appendonly", "no", "--daemonize", "no"],
                               env={}, log=self._stack.enter_context(self.redis_log.open("wb")))
            self._stack.callback(stop, self.redis)
            self._ping(port)
            self.log = log_dir / "celery-worker.log"
            self._log = self._stack.enter_context(self.log.open("wb"))
            self._worker_args = worker_command(
                "celery", "-A", "bench.peers.celery_tasks", "worker", "--pool", "prefork",
                "--concurrency", str(CONCURRENCY), "--loglevel", "WARNING",
                "--hostname", f"bench-{port}@%h")
            self._url = url
            self._stack.callback(self._stop_worker)
            self.app = make_app(url)
            self._stack.callback(self.app.close)
            self.start(warmup)
        except BaseException:
            self._stack.close()
            raise

    def _start_worker(self) -> None:
        self.worker = spawn(self._worker_args, env={REDIS_ENV: self._url}, log=self._log)

    def _ping(self, port: int, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        client = redis.Redis(host="127.0.0.1", port=port)
        while True:
            try:
                client.ping()
                client.close()
                return
            except redis.ConnectionError:
                check_alive(self.redis, "redis-server", self.redis_log)
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def pids(self) -> list[int]:
        assert self.worker is not None
        return [self.worker.pid, self.redis.pid]

    def _workflow(self, width: int, wf: str) -> chain:
        first = self.app.signature("bench.step", args=({"value": 2, "wf": wf},))
        if width == 0:
            return chain(first, *(self.app.signature("bench.step") for _ in range(3)))
        return chain(first, group(self.app.signature("bench.step") for _ in range(width)),
                     self.app.signature("bench.join"))

    def _submit(self, width: int, ids: list[str]) -> dict[str, float]:
        workflows = {wf: self._workflow(width, wf) for wf in ids}
        submitted = {}
        for wf, flow in workflows.items():
            submitted[wf] = time.time()
            self._results[wf] = flow.apply_async()
        return submitted

    def _wait(self, submitted: dict[str, float], timeout: float) -> dict[str, float]:
        deadline = time.monotonic() + timeout
        done = {}
        for wf in submitted:
            result = self._results.pop(wf)
            assert self.worker is not None
            check_alive(self.worker, "the celery worker", self.log)
            result.get(timeout=max(0.1, deadline - time.monotonic()), interval=0.005)
            finished = result.date_done
            if finished is None:
                raise RuntimeError(f"celery workflow {wf}: no date_done in the result")
            done[wf] = finished.timestamp()
        return done

    def close(self) -> None:
        self._forget_waiters()
        self._stack.close()

    def _forget_waiters(self) -> None:
        """A result object unsubscribes from its task when deleted, reconnecting to Redis if
        need be. Celery keeps the chords' header results as waiters
        (celery/backends/asynchronous.py `_pending_results`): let them go while Redis runs,
        not at interpreter exit."""
        gc.collect()
        backend = self.app.backend
        for mapping in getattr(backend, "_pending_results", ()):
            for waiters in list(mapping.values()):
                for result in list(waiters.values()):
                    backend.remove_pending_result(result)
