"""The Procrastinate peer's app and tasks (see procrastinate_peer.py), for its worker process:

    BENCH_PROCRASTINATE_URL=postgresql://... python -m procrastinate \\
        --app bench.peers.procrastinate_tasks.app worker --concurrency 16 \\
        --fetch-job-polling-interval 0.01 --listen-notify

Every step takes a dict, adds 1 to its "value" and returns it. A step that has successors
defers them before it returns (they become visible once its defer commits)."""

from __future__ import annotations

import os
from typing import Any

import procrastinate

URL_ENV = "BENCH_PROCRASTINATE_URL"
CONCURRENCY = 16  # shared/PEERS.md: 1 worker, concurrency 16, LISTEN/NOTIFY, 10 ms polling
POLL_SECONDS = 0.01

# The join counter of a diamond or fan-out: created by its first step, counted down by each
# parallel step; the one that takes it to zero defers the join.
JOINS_DDL = """
CREATE TABLE IF NOT EXISTS bench_joins (
    wf text PRIMARY KEY,
    remaining integer NOT NULL,
    total bigint NOT NULL DEFAULT 0)"""

# A pool connection for every job that may be running, plus the worker's own queries
# (psycopg_pool's default is 4 in all). The benchmark process, which imports this module
# without the URL, only reads the constants above.
app = procrastinate.App(connector=procrastinate.PsycopgConnector(
    conninfo=os.environ.get(URL_ENV, ""), min_size=4, max_size=CONCURRENCY + 4))


def bump(data: dict[str, Any]) -> dict[str, Any]:
    return {**data, "value": data["value"] + 1}


@app.task(name="bench_linear", pass_context=True)
async def linear(context: procrastinate.JobContext, wf: str, step: int,
                 data: dict[str, Any], last: bool = False) -> dict[str, Any]:
    out = bump(data)
    if step < 4:
        await context.app.configure_task("bench_linear").defer_async(
            wf=wf, step=step + 1, data=out, last=step + 1 == 4)
    return out


@app.task(name="bench_split", pass_context=True)
async def split(context: procrastinate.JobContext, wf: str, width: int,
                data: dict[str, Any]) -> dict[str, Any]:
    out = bump(data)
    await context.app.connector.execute_query_async(
        "INSERT INTO bench_joins (wf, remaining) VALUES (%(wf)s, %(width)s)", wf=wf, width=width)
    await context.app.configure_task("bench_branch").batch_defer_async(
        *({"wf": wf, "i": i, "data": out} for i in range(width)))
    return out


@app.task(name="bench_branch", pass_context=True)
async def branch(context: procrastinate.JobContext, wf: str, i: int,
                 data: dict[str, Any]) -> dict[str, Any]:
    out = bump(data)
    row = await context.app.connector.execute_query_one_async(
        "UPDATE bench_joins SET remaining = remaining - 1, total = total + %(value)s"
        " WHERE wf = %(wf)s RETURNING remaining, total", wf=wf, value=out["value"])
    if row["remaining"] == 0:
        await context.app.configure_task("bench_join").defer_async(
            wf=wf, data={**data, "value": int(row["total"])}, last=True)
    return out


@app.task(name="bench_join")
async def join(wf: str, data: dict[str, Any], last: bool = True) -> dict[str, Any]:
    return bump(data)

