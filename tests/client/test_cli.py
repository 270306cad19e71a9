"""The gRPC commands of `tasker` (task, step, dlq, template list|show) against the real gateway."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import uuid
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import pytest
import trio

from tasker_cli.main import build_parser, main
from tasker_cli.remote import remote
from tests.client.conftest import Stack, StackFactory, free_port

pytestmark = pytest.mark.usefixtures("wide_terminal")

CREATE = ["task", "create", "linear_workflow", "--namespace", "examples", "--version", "1.0.0"]


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    """`tasker ARGV...` with its stdout and stderr captured here (not by capsys: services
    started under capsys would keep logging into its closed buffer)."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


async def tasker(*argv: str) -> tuple[int, str, str]:
    """Run `tasker ARGV...` in a worker thread (the gateway shares this Trio loop)."""
    return await trio.to_thread.run_sync(run_cli, list(argv))


async def tasker_json(*argv: str) -> Any:
    code, out, err = await tasker(*argv, "--json")
    assert code == 0, err
    return json.loads(out)


async def test_task_commands(stack: Stack) -> None:
    addr = ["--address", stack.address]
    context = {"even_number": 2, "note": "[/not] [red]markup"}
    created = await tasker_json(*CREATE, *addr, "--context", json.dumps(context),
                                "--tag", "cli", "--initiator", "cli-test")
    assert created["status"] == "created"
    task_uuid = created["task_uuid"]
    assert created["task"]["task_uuid"] == task_uuid

    code, out, err = await tasker("task", "watch", task_uuid, "--steps", *addr)
    assert code == 0, err
    assert "complete" in out
    assert "step  linear_step_4: " in out
    assert f"task {task_uuid} is complete" in out

    code, out, _ = await tasker("task", "get", task_uuid, *addr)
    assert code == 0
    assert task_uuid in out
    assert "examples/linear_workflow@1.0.0" in out
    assert "linear_step_4" in out
    assert "[/not] [red]markup" in out
    got = await tasker_json("task", "get", task_uuid, *addr)
    assert got["status"] == "complete"
    assert got["context"] == context

    listed = await tasker_json("task", "list", "--namespace", "examples",
                               "--status", "complete", *addr)
    assert task_uuid in [t["task_uuid"] for t in listed["tasks"]]
    assert listed["pagination"]["page"] == 1
    code, out, _ = await tasker("task", "list", "--oldest-first", "--per-page", "5",
                                *addr)
    assert code == 0
    assert task_uuid in out
    assert "page 1/" in out

    code, _, err = await tasker("task", "cancel", task_uuid, *addr)
    assert code == 1
    assert err.startswith("error: transition_rejected:")

    watched = await tasker("task", "watch", task_uuid, "--json", *addr)
    lines = [json.loads(line) for line in watched[1].splitlines()]
    assert watched[0] == 0
    assert lines[-1]["event"] == "outcome"
    assert lines[-1]["status"] == "complete"

    code, out, err = await tasker(*CREATE, *addr, "--context", '{"even_number": 4}',
                                  "--watch")
    assert code == 0, err
    assert "task  " in out


async def test_step_commands(stack: Stack,                              tmp_path: Path) -> None:
    addr = ["--address", stack.address]
    context = tmp_path / "context.json"
    context.write_text('{"even_number": 2}')
    created = await tasker_json(*CREATE, *addr, "--context", f"@{context}")
    task_uuid = created["task_uuid"]
    assert (await tasker("task", "watch", task_uuid, *addr))[0] == 0

    steps = await tasker_json("step", "list", task_uuid, *addr)
    assert len(steps) == 4
    code, out, _ = await tasker("step", "list", task_uuid, *addr)
    assert code == 0
    assert "linear_step_1" in out

    by_name = await tasker_json("step", "get", task_uuid, "linear_step_4", *addr)
    assert by_name["results"]["result"]["value"] == 2 ** 16
    step_uuid = by_name["workflow_step_uuid"]
    code, out, _ = await tasker("step", "get", task_uuid, step_uuid, *addr)
    assert code == 0
    assert "linear_step_4" in out

    audit = await tasker_json("step", "audit", task_uuid, "linear_step_4", *addr)
    assert audit[0]["to_state"] == "enqueued_for_orchestration"
    assert audit[0]["success"] is True
    code, out, _ = await tasker("step", "audit", task_uuid, step_uuid, *addr)
    assert code == 0
    assert "-> enqueued_for_orchestration" in out

    code, _, err = await tasker("step", "get", task_uuid, "no_such_step", *addr)
    assert code == 1
    assert "no step named 'no_such_step'" in err


async def test_step_resolve(idle_stack: Stack) -> None:
    addr = ["--address", idle_stack.address]
    task_uuid = (await tasker_json(*CREATE, *addr, "--context",
                                   '{"even_number": 2}'))["task_uuid"]
    code, out, err = await tasker("step", "resolve", task_uuid, "linear_step_1",
                                  "--action", "complete_manually", "--reason", "by hand",
                                  "--actor", "cli", "--result", '{"value": 4}', *addr)
    assert code == 0, err
    assert "linear_step_1:" in out
    assert "-> complete" in out
    resolved = await tasker_json("step", "resolve", task_uuid, "linear_step_2",
                                 "--reason", "skip", "--actor", "cli", *addr)
    assert resolved["step"]["current_state"] == "resolved_manually"
    assert resolved["previous_state"] in ("pending", "enqueued")

    cancelled = await tasker_json("task", "cancel", task_uuid, "--reason", "stop",
                                  *addr)
    assert cancelled["status"] == "cancelled"
    other = (await tasker_json(*CREATE, *addr, "--context",
                               '{"even_number": 4}'))["task_uuid"]
    code, out, _ = await tasker("task", "cancel", other, *addr)
    assert code == 0
    assert "cancelled" in out


async def test_template_commands(stack: Stack) -> None:
    addr = ["--address", stack.address]
    listed = await tasker_json("template", "list", *addr)
    assert "examples" in listed["namespaces"]
    assert {"linear_workflow", "diamond_workflow"} <= {t["name"] for t in listed["templates"]}
    code, out, _ = await tasker("template", "list", "--namespace", "examples", *addr)
    assert code == 0
    assert "flaky_workflow" in out

    shown = await tasker_json("template", "show", "examples", "linear_workflow",
                              "1.0.0", *addr)
    assert [s["name"] for s in shown["steps"]][:2] == ["linear_step_1", "linear_step_2"]
    code, out, _ = await tasker("template", "show", "examples", "linear_workflow",
                                "1.0.0", *addr)
    assert code == 0
    assert "examples.square" in out

    code, _, err = await tasker("template", "show", "examples", "nope", "1.0.0", *addr)
    assert code == 1
    assert err.startswith("error: not_found:")


async def test_dlq_commands(start_stack: StackFactory) -> None:
    staleness = {"detection_interval_seconds": 0.2, "steps_in_process_minutes": 0.002}
    async with start_stack(worker=False, staleness=staleness) as running:
        addr = ["--address", running.address]
        task_uuid = (await tasker_json(*CREATE, *addr, "--context",
                                       '{"even_number": 2}'))["task_uuid"]
        code, out, _ = await tasker("task", "watch", task_uuid, *addr)
        assert code == 3  # the staleness detector moved it to error
        assert "error" in out

        entries = await tasker_json("dlq", "list", "--status", "pending", *addr)
        assert [e["task_uuid"] for e in entries] == [task_uuid]
        entry_uuid = entries[0]["dlq_entry_uuid"]
        code, out, _ = await tasker("dlq", "list", *addr)
        assert code == 0
        assert entry_uuid in out

        shown = await tasker_json("dlq", "show", task_uuid, *addr)
        assert shown["dlq_entry_uuid"] == entry_uuid
        code, out, _ = await tasker("dlq", "show", task_uuid, *addr)
        assert code == 0
        assert "staleness_timeout" in out

        stats = await tasker_json("dlq", "stats", *addr)
        assert stats
        code, out, _ = await tasker("dlq", "stats", *addr)
        assert code == 0
        assert "staleness_timeout" in out

        code, out, err = await tasker("dlq", "resolve", entry_uuid, "--notes", "fixed",
                                      "--by", "cli", "--metadata", '{"ticket": 1}', *addr)
        assert code == 0, err
        assert "manually_resolved" in out
        again = await tasker_json("dlq", "resolve", entry_uuid,
                                  "--status", "permanently_failed", *addr)
        assert again["resolution_status"] == "permanently_failed"


async def test_create_without_waiting_and_env_address(
    idle_stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TASKER_GATEWAY_ADDRESS", idle_stack.address)
    code, out, err = await tasker(*CREATE, "--no-wait", "--context",
                                  '{"even_number": 2}', "--timeout", "5")
    assert code == 0, err
    assert "accepted request" in out
    code, out, _ = await tasker(*CREATE, "--context", '{"even_number": 4}')
    assert code == 0
    assert "steps_in_process" in out or "pending" in out or "initializing" in out


async def test_failures_are_one_line() -> None:
    closed = ["--address", f"127.0.0.1:{free_port()}", "--timeout", "0.5"]
    code, out, err = await tasker("task", "get", str(uuid.uuid4()), *closed)
    assert code == 1
    assert out == ""
    assert err.startswith("error: unavailable: cannot reach the gateway at 127.0.0.1:")
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "argv",
    [
        ["task", "get", "not-a-uuid"],
        ["task", "create", "x", "--context", "{bad json"],
        ["task", "create", "x", "--context", "[1, 2]"],
        ["task", "create", "x", "--context", "@/no/such/file.json"],
        ["task", "list", "--status", "finished"],
        ["task", "get", str(uuid.uuid4()), "--timeout", "-1"],
        ["task", "get", str(uuid.uuid4()), "--timeout", "soon"],
        ["step", "resolve", str(uuid.uuid4()), "s", "--actor", "a"],
        ["dlq", "resolve", str(uuid.uuid4()), "--status", "forgotten"],
    ],
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_interrupt_exits_130(capsys: pytest.CaptureFixture[str]) -> None:
    def interrupted(*_: Any) -> int:
        raise KeyboardInterrupt

    args = build_parser().parse_args(
        ["task", "get", str(uuid.uuid4()), "--address", f"127.0.0.1:{free_port()}"])
    assert remote(interrupted)(args) == 130
    assert "interrupted" in capsys.readouterr().err


async def test_ctrl_c_stops_a_watch(idle_stack: Stack) -> None:
    task_uuid = (await tasker_json(*CREATE, "--address", idle_stack.address, "--context",
                                   '{"even_number": 6}'))["task_uuid"]
    env = {**os.environ, "COLUMNS": "200", "PYTHONUNBUFFERED": "1"}
    proc = await trio.lowlevel.open_process(
        [sys.executable, "-m", "tasker_cli", "task", "watch", task_uuid, "--address",
         idle_stack.address], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    assert proc.stdout is not None
    assert proc.stderr is not None
    with trio.fail_after(20):
        first = await proc.stdout.receive_some()
        assert b"task  " in first  # the current state arrives first
        proc.send_signal(signal.SIGINT)
        code = await proc.wait()
        err = await proc.stderr.receive_some()
    assert code == 130, err
    assert b"interrupted" in err
    assert b"Traceback" not in err
