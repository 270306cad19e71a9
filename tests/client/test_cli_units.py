"""Pure parts of the CLI: lazy command imports, help on every option, the `tasker up` state
file, step counts that add up, version ordering, REST enum spellings in --json."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tasker_cli.jsonout import dumps
from tasker_cli.localstate import UpState, running_up, write_state
from tasker_cli.main import build_parser
from tasker_cli.remote import gateway_address
from tasker_cli.render import step_counts
from tasker_cli.templates import version_key
from tasker_client.convert import to_struct
from tasker_client.proto.tasker.v1 import StepReadiness, StepState, Task, TaskState

HEAVY = ("rich", "psycopg", "pydantic", "trio", "grpclib", "betterproto2", "tasker_client.proto",
         "tasker_cli.commands", "tasker_cli.remote", "tasker_shared.runtime.settings")

PROBE = """
import json, sys
import tasker_cli.main
try:
    tasker_cli.main.main(["--help"])
except SystemExit:
    pass
after = set(sys.modules)
print(json.dumps(sorted(n for n in after if any(n == h or n.startswith(h + ".") for h in HEAVY))))
"""


def test_help_imports_no_command_module() -> None:
    result = subprocess.run([sys.executable, "-c", f"HEAVY = {HEAVY!r}\n{PROBE}"],
                            capture_output=True, text=True, check=True)
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []
    assert "task      create, inspect, cancel and watch tasks" in result.stdout


def _actions(parser: argparse.ArgumentParser, path: str) -> Iterator[tuple[str, argparse.Action]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _actions(sub, f"{path} {name}")
        elif not isinstance(action, argparse._HelpAction):
            yield path, action


def test_every_option_has_help() -> None:
    missing = [f"{path} {action.option_strings or action.dest}"
               for path, action in _actions(build_parser(), "tasker") if not action.help]
    assert missing == []


def test_a_command_parses_with_only_its_module() -> None:
    args = build_parser(["task", "watch", "--request", "r-1"]).parse_args(
        ["task", "watch", "--request", "r-1"])
    assert args.request == "r-1"
    assert args.steps is True


@pytest.fixture
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TASKER_STATE_DIR", str(tmp_path))
    monkeypatch.delenv("TASKER_GATEWAY_ADDRESS", raising=False)
    return tmp_path


def test_up_state_file_gives_the_address(state_dir: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    no_flags = argparse.Namespace(address=None)
    assert gateway_address(no_flags) is None  # nothing running: the client's default
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    write_state(UpState(pid=dead.pid, grpc_address="127.0.0.1:1", rest_url="http://x",
                        started_at=2.0))
    write_state(UpState(pid=os.getpid(), grpc_address="127.0.0.1:9191",
                        rest_url="http://127.0.0.1:8081", started_at=1.0))
    (state_dir / "up-garbage.json").write_text("{not json")
    assert gateway_address(no_flags) == "127.0.0.1:9191"
    assert not (state_dir / f"up-{dead.pid}.json").exists()  # stale: removed
    assert gateway_address(argparse.Namespace(address="h:1")) == "h:1"
    monkeypatch.setenv("TASKER_GATEWAY_ADDRESS", "env:2")
    assert gateway_address(no_flags) is None  # the client reads the environment
    found = running_up()
    assert found is not None
    assert found.rest_url == "http://127.0.0.1:8081"


def test_step_counts_add_up() -> None:
    states = [StepState.COMPLETE, StepState.ENQUEUED, StepState.PENDING, StepState.PENDING,
              StepState.WAITING_FOR_RETRY, StepState.ERROR]
    task = Task(total_steps=6, completed_steps=1, pending_steps=2, in_progress_steps=0,
                failed_steps=1, steps=[StepReadiness(name=f"s{i}", current_state=s)
                                       for i, s in enumerate(states)])
    text = step_counts(task)
    assert text == ("6 step(s): 1 complete, 1 enqueued, 1 waiting_for_retry, 2 pending, "
                    "1 error")
    numbers = [int(part.split()[0]) for part in text.split(": ")[1].split(", ")]
    assert sum(numbers) == 6
    # without step rows: the server's counters plus what they leave out
    bare = Task(total_steps=3, completed_steps=0, pending_steps=2)
    assert step_counts(bare) == "3 step(s): 2 pending, 1 other"


def test_version_order() -> None:
    ordered = ["0.9.0", "1.0.0-alpha", "1.0.0-rc.1", "1.0.0", "1.2.0", "1.10.0", "2.0.0"]
    assert sorted(reversed(ordered), key=version_key) == ordered


def test_json_uses_rest_spellings_and_integers() -> None:
    task = Task(task_uuid="t", status=TaskState.BLOCKED_BY_FAILURES,
                context=to_struct({"n": 2.0, "big": 10, "label": "TASK_STATE_COMPLETE"}),
                steps=[StepReadiness(name="a", current_state=StepState.IN_PROGRESS)])
    line = dumps({"event": "x", "task": task, "state": TaskState.COMPLETE})
    assert "\n" not in line
    data = json.loads(line)
    assert data["state"] == "complete"
    assert data["task"]["status"] == "blocked_by_failures"
    assert data["task"]["execution_status"] is None  # unspecified
    assert data["task"]["steps"][0]["current_state"] == "in_progress"
    assert data["task"]["context"] == {"n": 2, "big": 10, "label": "TASK_STATE_COMPLETE"}
    assert '"n":2,' in line
