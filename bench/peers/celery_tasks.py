"""The Celery peer's app and tasks (see celery_peer.py), for its worker process:

    BENCH_CELERY_REDIS=redis://127.0.0.1:PORT/0 python -m celery \\
        -A bench.peers.celery_tasks worker --pool prefork --concurrency 8

Every step takes a dict, adds 1 to its "value" and returns it; the join takes the list of its
parents' dicts (a chord's header results) and returns their values' sum plus 1."""

from __future__ import annotations

import os
from typing import Any

from celery import Celery

REDIS_ENV = "BENCH_CELERY_REDIS"
CONCURRENCY = 8  # shared/PEERS.md: prefork 8, early acks (Celery's default)


def make_app(redis_url: str) -> Celery:
    app = Celery("bench_peer", broker=redis_url, backend=redis_url)
    app.conf.update(broker_connection_retry_on_startup=True, worker_hijack_root_logger=False,
                    task_serializer="json", result_serializer="json",
                    accept_content=["json"])
    return app


app = make_app(os.environ.get(REDIS_ENV, "redis://127.0.0.1:6379/0"))


@app.task(name="bench.step")
def step(data: dict[str, Any]) -> dict[str, Any]:
    return {**data, "value": data["value"] + 1}


@app.task(name="bench.join")
def join(parents: list[dict[str, Any]]) -> dict[str, Any]:
    return {**parents[0], "value": sum(p["value"] for p in parents) + 1}
