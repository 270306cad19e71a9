"""The status hub LISTENs on the transition channels only while someone watches a task (and
a short while after): a gateway nobody watches through hears none of the NOTIFYs every step
sends. Real PostgreSQL, real LISTEN/NOTIFY."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import partial
from uuid import UUID, uuid4

import psycopg
import trio

from tasker_gateway.streams import STEP_EVENTS_CHANNEL, TASK_EVENTS_CHANNEL, StatusHub


def _listeners(url: str) -> int:
    """Sessions of this database listening on a transition channel."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND application_name = 'tasker-listener'").fetchone()
    assert row is not None
    return int(row[0])


def _notify(url: str, channel: str, task: UUID, to_state: str) -> None:
    payload = {"task_uuid": str(task), "step_uuid": str(uuid4()), "from_state": "enqueued",
               "to_state": to_state, "event": "start"}
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_notify(%s, %s)", (channel, json.dumps(payload)))


async def _until(predicate: Callable[[], bool]) -> None:
    with trio.fail_after(10):
        for _ in iter(predicate, True):  # the hub's state changes: no event to wait for
            await trio.sleep(0.01)


async def test_the_hub_listens_only_while_someone_watches(db_url: str) -> None:
    hub = StatusHub()
    task = uuid4()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(partial(hub.serve, db_url, linger_seconds=0.3))
        await trio.sleep(0.3)
        assert not hub.listening and hub.listens == 0 and _listeners(db_url) == 0
        _notify(db_url, STEP_EVENTS_CHANNEL, task, "in_progress")  # heard by no one

        sub = hub.subscribe(task)
        await _until(lambda: hub.listening)
        assert _listeners(db_url) == 1
        # Once listening, every watcher reads its task again (None), then hears transitions.
        assert sub.receive.receive_nowait() is None
        _notify(db_url, STEP_EVENTS_CHANNEL, task, "in_progress")
        _notify(db_url, TASK_EVENTS_CHANNEL, uuid4(), "complete")  # another task's
        with trio.fail_after(10):
            event = await sub.receive.receive()
        assert event is not None and event.task_uuid == task and event.to_state == "in_progress"
        assert hub.delivered == 1

        hub.unsubscribe(sub)
        await _until(lambda: not hub.listening)  # after the linger
        assert _listeners(db_url) == 0 and hub.listens == 1

        again = hub.subscribe(task)  # watched again: listening again, once
        await _until(lambda: hub.listening)
        assert hub.listens == 2 and again.receive.receive_nowait() is None
        hub.unsubscribe(again)
        nursery.cancel_scope.cancel()


async def test_a_watcher_that_comes_back_within_the_linger_keeps_the_listener(
        db_url: str) -> None:
    hub = StatusHub()
    task = uuid4()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(partial(hub.serve, db_url, linger_seconds=1.0))
        first = hub.subscribe(task)
        await _until(lambda: hub.listening)
        hub.unsubscribe(first)
        second = hub.subscribe(task)  # before the linger ran out
        await trio.sleep(1.5)
        assert hub.listening and hub.listens == 1
        _notify(db_url, STEP_EVENTS_CHANNEL, task, "complete")
        with trio.fail_after(10):
            event = await second.receive.receive()
            while event is None:  # the resync at the start, if still queued
                event = await second.receive.receive()
        assert event.to_state == "complete"
        hub.unsubscribe(second)
        nursery.cancel_scope.cancel()
