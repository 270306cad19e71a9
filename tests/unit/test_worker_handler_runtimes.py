"""Where handlers run: `async def` on the worker's asyncio loop (default) or under Trio (marked),
sync ones in threads; cancellation reaches each kind; the SDK leaves asyncio's global state
alone."""

from __future__ import annotations

import asyncio
import contextvars
import subprocess
import sys
import threading
from typing import Any

import pytest
import trio

from tasker_worker.runtime.aio import HandlerCancelled, run_on_asyncio
from tasker_worker.sdk import (
    CancelToken,
    HandlerRegistry,
    StepCancelled,
    StepContext,
    StepHandler,
    step_handler,
    success,
    trio_handler,
)

VAR: contextvars.ContextVar[str] = contextvars.ContextVar("VAR", default="unset")


def _ctx() -> StepContext:
    return StepContext(task_uuid="t", step_uuid="s", correlation_id="c", step_name="step",
                       handler_name="h", namespace="ns", task_name="task", task_version="1",
                       task_context={"n": 2})


async def test_asyncio_handler_gets_a_real_asyncio_loop() -> None:
    async def handler() -> dict[str, Any]:
        await asyncio.sleep(0.001)
        async with asyncio.timeout(5):
            a, b = await asyncio.gather(asyncio.sleep(0, "a"), asyncio.sleep(0, "b"))
        loop = asyncio.get_running_loop()
        return {"got": [a, b], "loop": type(loop).__module__, "var": VAR.get(),
                "thread": threading.current_thread().name}

    VAR.set("from trio")
    out = await run_on_asyncio(handler())
    assert out == {"got": ["a", "b"], "loop": "asyncio.unix_events", "var": "from trio",
                   "thread": "tasker-asyncio-handlers"}


async def test_asyncio_handler_exceptions_propagate() -> None:
    async def boom() -> None:
        await asyncio.sleep(0)
        raise ValueError("bad input")

    async def cancels_itself() -> None:
        raise asyncio.CancelledError

    async def exits() -> None:
        raise SystemExit(3)

    with pytest.raises(ValueError, match="bad input"):
        await run_on_asyncio(boom())
    with pytest.raises(HandlerCancelled):
        await run_on_asyncio(cancels_itself())
    with pytest.raises(RuntimeError, match="raised SystemExit"):
        await run_on_asyncio(exits())
    assert await run_on_asyncio(asyncio.sleep(0, "the loop still runs")) == "the loop still runs"


async def test_trio_cancellation_cancels_the_asyncio_task_and_waits_for_it() -> None:
    seen: list[str] = []
    started = trio.Event()
    token = trio.lowlevel.current_trio_token()

    async def slow() -> None:
        token.run_sync_soon(started.set)
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            seen.append("CancelledError")
            await asyncio.sleep(0.01)  # cleanup that awaits still runs
            seen.append("cleaned up")
            raise

    with trio.CancelScope() as scope:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(run_on_asyncio, slow())
            await started.wait()
            scope.cancel()
    assert scope.cancelled_caught
    assert seen == ["CancelledError", "cleaned up"]


async def test_a_hundred_asyncio_handlers_run_at_once() -> None:
    async def handler(barrier: asyncio.Barrier) -> int:
        async with asyncio.timeout(30):
            return await barrier.wait()  # returns only once all 100 wait

    barrier = await run_on_asyncio(_make_barrier(100))
    results: list[int] = []

    async def one() -> None:
        results.append(await run_on_asyncio(handler(barrier)))

    async with trio.open_nursery() as nursery:
        for _ in range(100):
            nursery.start_soon(one)
    assert sorted(results) == list(range(100))


async def _make_barrier(parties: int) -> asyncio.Barrier:
    return asyncio.Barrier(parties)


class TestRuntimeMarks:
    def test_default_runtimes(self) -> None:
        registry = HandlerRegistry()

        def plain(context: StepContext) -> None:
            return None

        async def coro(context: StepContext) -> None:
            return None

        registry.register("plain", plain)
        registry.register("coro", coro)
        assert registry.resolve("plain").runtime == "sync"
        assert registry.resolve("coro").runtime == "asyncio"

    def test_trio_marks(self) -> None:
        registry = HandlerRegistry()

        @step_handler("decorated", runtime="trio", registry=registry)
        async def decorated(context: StepContext) -> None:
            return None

        @trio_handler
        async def marked(context: StepContext) -> None:
            return None

        class OnTrio(StepHandler, register=False):
            runtime = "trio"

            async def call(self, context: StepContext) -> None:
                return None

        class MarkedMethod:
            @trio_handler
            async def run(self, context: StepContext) -> None:
                return None

        registry.register("marked", marked)
        registry.register("class", OnTrio)
        registry.register("method", MarkedMethod())
        for name in ("decorated", "marked", "class"):
            assert registry.resolve(name).runtime == "trio", name
        assert registry.resolve("method", "run").runtime == "trio"

    def test_trio_mark_on_a_sync_handler_changes_nothing(self) -> None:
        registry = HandlerRegistry()

        @step_handler("sync", runtime="trio", registry=registry)
        def sync(context: StepContext) -> None:
            return None

        assert registry.resolve("sync").runtime == "sync"

    def test_unknown_runtime_is_refused(self) -> None:
        with pytest.raises(ValueError, match="runtime must be one of asyncio, trio"):
            step_handler("x", runtime="curio")  # type: ignore[arg-type]


class TestCancelToken:
    def test_flag_reason_callbacks_and_check(self) -> None:
        ctx = _ctx()
        calls: list[str] = []
        ctx.on_cancel(calls.append)
        forget = ctx.on_cancel(lambda reason: calls.append("forgotten"))
        forget()
        assert not ctx.cancelled and ctx.cancel_reason is None
        ctx.check_cancelled()
        assert not ctx.wait_cancelled(0)
        ctx.cancel_token.cancel("task cancelled")
        ctx.cancel_token.cancel("second reason ignored")
        assert ctx.cancelled and ctx.cancel_reason == "task cancelled"
        assert calls == ["task cancelled"]
        assert ctx.wait_cancelled(None)
        with pytest.raises(StepCancelled, match="task cancelled") as info:
            ctx.check_cancelled()
        assert info.value.retryable is False
        ctx.on_cancel(calls.append)  # late registration: called at once
        assert calls == ["task cancelled", "task cancelled"]

    def test_a_failing_callback_does_not_stop_the_others(self) -> None:
        token = CancelToken()
        calls: list[str] = []

        def broken(reason: str) -> None:
            raise OSError("already closed")

        token.on_cancel(broken)
        token.on_cancel(calls.append)
        token.cancel("timed out")
        assert calls == ["timed out"]

    def test_wait_wakes_a_sleeping_thread(self) -> None:
        token = CancelToken()
        woke: list[bool] = []
        thread = threading.Thread(target=lambda: woke.append(token.wait(60)))
        thread.start()
        token.cancel("stop")
        thread.join(30)
        assert woke == [True]

    def test_contexts_compare_without_their_tokens(self) -> None:
        assert _ctx() == _ctx()  # each has its own token; equality ignores it


def test_importing_the_sdk_leaves_asyncio_alone() -> None:
    code = (
        "import asyncio, sys\n"
        "before = type(asyncio.get_event_loop_policy())\n"
        "import tasker_worker.sdk, tasker_worker.runtime.executor\n"
        "assert 'trio_asyncio' not in sys.modules, 'trio_asyncio imported'\n"
        "assert type(asyncio.get_event_loop_policy()) is before\n"
        "async def probe():\n"
        "    return type(asyncio.get_running_loop()).__module__\n"
        "print(asyncio.run(probe()))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "asyncio.unix_events"


def test_handler_loop_is_plain_asyncio_even_with_trio_asyncio_imported() -> None:
    """In one process with the gateway (which imports trio-asyncio and so swaps asyncio's
    loop policy) handlers still get a standard asyncio loop."""
    code = (
        "import asyncio, trio, trio_asyncio\n"
        "from tasker_worker.runtime.aio import run_on_asyncio\n"
        "async def probe():\n"
        "    await asyncio.sleep(0)\n"
        "    return type(asyncio.get_running_loop()).__module__\n"
        "async def main():\n"
        "    return await run_on_asyncio(probe())\n"
        "print(trio.run(main))\n"
    )
    done = subprocess.run([sys.executable, "-W", "ignore::DeprecationWarning", "-c", code],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "asyncio.unix_events"


async def test_success_result_through_the_bridge() -> None:
    registry = HandlerRegistry()

    @step_handler("double", registry=registry)
    async def double(context: StepContext) -> Any:
        await asyncio.sleep(0)
        return {"n": context.get_input("n") * 2}

    resolved = registry.resolve("double")
    assert await run_on_asyncio(resolved.invoke_async(_ctx())) == success({"n": 4})
