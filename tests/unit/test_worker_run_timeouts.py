"""A handler run's timeout (RunControl): the token reads as cancelled from the deadline on,
before the worker has stopped the run; the scope's deadline stops it; `settle` then records
the timeout and calls the token's callbacks once."""

from __future__ import annotations

import threading
import time

import trio

from tasker_worker.runtime.cancellation import RunControl


async def test_a_sync_run_past_its_deadline_is_stopped_and_told_it_timed_out() -> None:
    control = RunControl()
    heard: list[str] = []
    control.token.on_cancel(heard.append)
    release = threading.Event()
    seen: list[bool] = []

    def handler() -> None:  # blocks past its deadline, then looks at its token
        release.wait(5)
        seen.append(control.token.cancelled)

    control.expire_after(0.05)
    started = time.perf_counter()
    with control.scope:
        await trio.to_thread.run_sync(handler, abandon_on_cancel=True)
    elapsed = time.perf_counter() - started
    assert control.scope.cancelled_caught
    assert 0.04 <= elapsed < 1.0
    assert control.token.cancelled and not control.stopped and heard == []
    control.settle()
    assert control.timed_out and control.stopped
    assert heard == ["timed out after 0.05s"]
    assert control.token.reason == "timed out after 0.05s"
    release.set()
    await trio.sleep(0.05)
    assert seen == [True]
    control.settle()  # once only
    assert heard == ["timed out after 0.05s"]


async def test_a_run_that_ends_before_its_deadline_is_not_a_timeout() -> None:
    control = RunControl()
    control.expire_after(5)
    with control.scope:
        await trio.lowlevel.checkpoint()
    control.settle()
    assert not control.token.cancelled and not control.timed_out and not control.stopped


async def test_an_async_run_sees_its_token_cancelled_when_its_deadline_cancels_it() -> None:
    control = RunControl()
    seen: list[bool] = []
    control.expire_after(0.02)
    with control.scope:
        try:
            await trio.sleep(5)
        finally:
            seen.append(control.token.cancelled)
    assert seen == [True]
    control.settle()
    assert control.timed_out


async def test_a_cancel_before_the_deadline_wins_over_the_timeout() -> None:
    control = RunControl()
    control.expire_after(0.02)
    with control.scope:
        control.cancel("the step was resolved")
        await trio.sleep(1)
    await trio.sleep(0.03)
    control.settle()
    assert not control.timed_out
    assert control.token.reason == "the step was resolved"
