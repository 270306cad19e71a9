"""The gRPC commands of `tasker` (task, step, dlq, template list|show) against the real gateway."""

from __future__ import annotations

import functools
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
import trio

from tasker_cli.main import build_parser, main
from tasker_cli.remote import remote
from tests.client.conftest import Stack, StackFactory, free_port

pytestmark = pytest.mark.usefixtures("wide_terminal")

CREATE = ["task", "create", "linear_workflow", "--namespace", "examples", "--version", "1.0.0"]


async def tasker(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run `tasker ARGV...` in a worker thread (the gateway shares this Trio loop)."""
    capsys.readouterr()
    code = await trio.to_thread.run_sync(functools.partial(main, list(argv)))
    out, err = capsys.readouterr()
    return code, out, err


async def tasker_json(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    code, out, err = await tasker(capsys, *argv, "--json")
    assert code == 0, err
    return json.loads(out)


async def test_task_commands(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    addr = ["--address", stack.address]
    created = await tasker_json(capsys, *CREATE, *addr, "--context", '{"even_number": 2}',
                                "--tag", "cli", "--initiator", "cli-test")
    assert created["status"] == "CREATE_TASK_STATUS_CREATED"
    task_uuid = created["task_uuid"]
    assert created["task"]["task_uuid"] == task_uuid

    code, out, err = await tasker(capsys, "task", "watch", task_uuid, "--steps", *addr)
    assert code == 0, err
    assert "complete" in out
    assert "step linear_step_4" in out

    code, out, _ = await tasker(capsys, "task", "get", task_uuid, *addr)
    assert code == 0
    assert task_uuid in out
    assert "examples/linear_workflow@1.0.0" in out
    assert "linear_step_4" in out
    got = await tasker_json(capsys, "task", "get", task_uuid, *addr)
    assert got["status"] == "TASK_STATE_COMPLETE"
    assert got["context"] == {"even_number": 2}

    listed = await tasker_json(capsys, "task", "list", "--namespace", "examples",
                               "--status", "complete", *addr)
    assert task_uuid in [t["task_uuid"] for t in listed["tasks"]]
    assert listed["pagination"]["page"] == 1
    code, out, _ = await tasker(capsys, "task", "list", "--oldest-first", "--per-page", "5",
                                *addr)
    assert code == 0
    assert task_uuid in out
    assert "page 1/" in out

    code, _, err = await tasker(capsys, "task", "cancel", task_uuid, *addr)
    assert code == 1
    assert err.startswith("error: transition_rejected:")

    watched = await tasker(capsys, "task", "watch", task_uuid, "--json", *addr)
    lines = [json.loads(line) for line in watched[1].splitlines()]
    assert watched[0] == 0
    assert lines[-1]["task_state"] == "TASK_STATE_COMPLETE"

    code, out, err = await tasker(capsys, *CREATE, *addr, "--context", '{"even_number": 4}',
                                  "--watch")
    assert code == 0, err
    assert "task: " in out


async def test_step_commands(stack: Stack, capsys: pytest.CaptureFixture[str],
                             tmp_path: Path) -> None:
    addr = ["--address", stack.address]
    context = tmp_path / "context.json"
    context.write_text('{"even_number": 2}')
    created = await tasker_json(capsys, *CREATE, *addr, "--context", f"@{context}")
    task_uuid = created["task_uuid"]
    assert (await tasker(capsys, "task", "watch", task_uuid, *addr))[0] == 0

    steps = await tasker_json(capsys, "step", "list", task_uuid, *addr)
    assert len(steps) == 4
    code, out, _ = await tasker(capsys, "step", "list", task_uuid, *addr)
    assert code == 0
    assert "linear_step_1" in out

    by_name = await tasker_json(capsys, "step", "get", task_uuid, "linear_step_4", *addr)
    assert by_name["results"]["result"]["value"] == 2 ** 16
    step_uuid = by_name["workflow_step_uuid"]
    code, out, _ = await tasker(capsys, "step", "get", task_uuid, step_uuid, *addr)
    assert code == 0
    assert "linear_step_4" in out

    audit = await tasker_json(capsys, "step", "audit", task_uuid, "linear_step_4", *addr)
    assert audit[0]["to_state"] == "STEP_STATE_COMPLETE"
    code, out, _ = await tasker(capsys, "step", "audit", task_uuid, step_uuid, *addr)
    assert code == 0
    assert "-> complete" in out

    code, _, err = await tasker(capsys, "step", "get", task_uuid, "no_such_step", *addr)
    assert code == 1
    assert "no step named 'no_such_step'" in err


async def test_step_resolve(idle_stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    addr = ["--address", idle_stack.address]
    task_uuid = (await tasker_json(capsys, *CREATE, *addr, "--context",
                                   '{"even_number": 2}'))["task_uuid"]
    code, out, err = await tasker(capsys, "step", "resolve", task_uuid, "linear_step_1",
                                  "--action", "complete_manually", "--reason", "by hand",
                                  "--actor", "cli", "--result", '{"value": 4}', *addr)
    assert code == 0, err
    assert "linear_step_1:" in out
    assert "-> complete" in out
    resolved = await tasker_json(capsys, "step", "resolve", task_uuid, "linear_step_2",
                                 "--reason", "skip", "--actor", "cli", *addr)
    assert resolved["step"]["current_state"] == "STEP_STATE_RESOLVED_MANUALLY"
    assert resolved["previous_state"].startswith("STEP_STATE_")

    cancelled = await tasker_json(capsys, "task", "cancel", task_uuid, "--reason", "stop",
                                  *addr)
    assert cancelled["status"] == "TASK_STATE_CANCELLED"
    other = (await tasker_json(capsys, *CREATE, *addr, "--context",
                               '{"even_number": 4}'))["task_uuid"]
    code, out, _ = await tasker(capsys, "task", "cancel", other, *addr)
    assert code == 0
    assert "cancelled" in out


async def test_template_commands(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    addr = ["--address", stack.address]
    listed = await tasker_json(capsys, "template", "list", *addr)
    assert "examples" in listed["namespaces"]
    assert {"linear_workflow", "diamond_workflow"} <= {t["name"] for t in listed["templates"]}
    code, out, _ = await tasker(capsys, "template", "list", "--namespace", "examples", *addr)
    assert code == 0
    assert "flaky_workflow" in out

    shown = await tasker_json(capsys, "template", "show", "examples", "linear_workflow",
                              "1.0.0", *addr)
    assert [s["name"] for s in shown["steps"]][:2] == ["linear_step_1", "linear_step_2"]
    code, out, _ = await tasker(capsys, "template", "show", "examples", "linear_workflow",
                                "1.0.0", *addr)
    assert code == 0
    assert "examples.square" in out

    code, _, err = await tasker(capsys, "template", "show", "examples", "nope", "1.0.0", *addr)
    assert code == 1
    assert err.startswith("error: not_found:")


async def test_dlq_commands(start_stack: StackFactory,
                            capsys: pytest.CaptureFixture[str]) -> None:
    staleness = {"detection_interval_seconds": 0.2, "steps_in_process_minutes": 0.002}
    async with start_stack(worker=False, staleness=staleness) as running:
        addr = ["--address", running.address]
        task_uuid = (await tasker_json(capsys, *CREATE, *addr, "--context",
                                       '{"even_number": 2}'))["task_uuid"]
        code, out, _ = await tasker(capsys, "task", "watch", task_uuid, *addr)
        assert code == 1  # the staleness detector moved it to error
        assert "error" in out

        entries = await tasker_json(capsys, "dlq", "list", "--status", "pending", *addr)
        assert [e["task_uuid"] for e in entries] == [task_uuid]
        entry_uuid = entries[0]["dlq_entry_uuid"]
        code, out, _ = await tasker(capsys, "dlq", "list", *addr)
        assert code == 0
        assert entry_uuid in out

        shown = await tasker_json(capsys, "dlq", "show", task_uuid, *addr)
        assert shown["dlq_entry_uuid"] == entry_uuid
        code, out, _ = await tasker(capsys, "dlq", "show", task_uuid, *addr)
        assert code == 0
        assert "staleness_timeout" in out

        stats = await tasker_json(capsys, "dlq", "stats", *addr)
        assert stats
        code, out, _ = await tasker(capsys, "dlq", "stats", *addr)
        assert code == 0
        assert "staleness_timeout" in out

        code, out, err = await tasker(capsys, "dlq", "resolve", entry_uuid, "--notes", "fixed",
                                      "--by", "cli", "--metadata", '{"ticket": 1}', *addr)
        assert code == 0, err
        assert "manually_resolved" in out
        again = await tasker_json(capsys, "dlq", "resolve", entry_uuid,
                                  "--status", "permanently_failed", *addr)
        assert again["resolution_status"] == "DLQ_RESOLUTION_STATUS_PERMANENTLY_FAILED"


async def test_create_without_waiting_and_env_address(
    idle_stack: Stack, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TASKER_GATEWAY_ADDRESS", idle_stack.address)
    code, out, err = await tasker(capsys, *CREATE, "--no-wait", "--context",
                                  '{"even_number": 2}', "--timeout", "5")
    assert code == 0, err
    assert "accepted request" in out
    code, out, _ = await tasker(capsys, *CREATE, "--context", '{"even_number": 4}')
    assert code == 0
    assert "steps_in_process" in out or "pending" in out or "initializing" in out


async def test_failures_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    closed = ["--address", f"127.0.0.1:{free_port()}", "--timeout", "0.5"]
    code, out, err = await tasker(capsys, "task", "get", str(uuid.uuid4()), *closed)
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
