"""Committed betterproto2 code matches proto/tasker/v1; the contract has what SPEC 7.3 names."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import grpclib.const
import pytest

import tasker_shared.contracts.generated.tasker.v1 as pb
from tasker_shared.contracts import codegen
from tasker_shared.domain.states import StepState, TaskState


@pytest.fixture(autouse=True)
def _scratch_in_tmp_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Any temporary directory codegen makes for itself lands under tmp_path.
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))


def test_committed_code_is_current(tmp_path: Path) -> None:
    assert codegen.check(codegen.DEFAULT_OUT, scratch=tmp_path) == []


def test_check_mode_passes_on_committed_code() -> None:
    assert codegen.main(["--check"]) == 0


def test_check_reports_stale_missing_and_unexpected_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "pkg"
    assert codegen.main(["--out", str(out)]) == 0
    assert codegen.check(out, scratch=tmp_path) == []
    (out / "tasker" / "v1" / "__init__.py").write_text("# edited by hand\n")
    (out / "message_pool.py").unlink()
    (out / "stray.py").write_text("")
    problems = codegen.check(out, scratch=tmp_path)
    assert problems == [
        "missing: message_pool.py",
        "unexpected: stray.py",
        "differs: tasker/v1/__init__.py",
    ]
    capsys.readouterr()
    assert codegen.main(["--check", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "stale" in err
    assert "differs: tasker/v1/__init__.py" in err


def test_generate_replaces_stale_files_and_keeps_caches(tmp_path: Path) -> None:
    out = tmp_path / "pkg"
    (out / "__pycache__").mkdir(parents=True)
    (out / "__pycache__" / "x.pyc").write_bytes(b"")
    (out / "old_module.py").write_text("")
    codegen.generate(out)
    assert not (out / "old_module.py").exists()
    assert (out / "__pycache__" / "x.pyc").exists()
    assert codegen.check(out, scratch=tmp_path) == []


def test_protoc_errors_are_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "proto"
    (root / "tasker" / "v1").mkdir(parents=True)
    with pytest.raises(codegen.CodegenError, match=r"no \.proto files"):
        codegen.run_protoc(tmp_path / "out", proto_root=root)
    (root / "tasker" / "v1" / "broken.proto").write_text('syntax = "proto3";\nmessage {\n')
    with pytest.raises(codegen.CodegenError, match="protoc failed"):
        codegen.run_protoc(tmp_path / "out", proto_root=root)
    assert codegen.main(["--proto-root", str(root), "--out", str(tmp_path / "out")]) == 2
    assert "broken.proto" in capsys.readouterr().err


def test_cli_module_entry_point(tmp_path: Path) -> None:
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-m", "tasker_shared.contracts.codegen", "--check"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "up to date" in proc.stdout


# -- what the generated package must contain -------------------------------------------


def _names(enum: type[object]) -> list[str]:
    return [member.name for member in enum]  # type: ignore[attr-defined]


def test_task_state_enum_mirrors_the_domain() -> None:
    assert _names(pb.TaskState) == ["UNSPECIFIED", *(s.name for s in TaskState)]
    assert pb.TaskState.UNSPECIFIED.value == 0
    assert [pb.TaskState[s.name].value for s in TaskState] == list(range(1, 13))


def test_step_state_enum_mirrors_the_domain() -> None:
    assert _names(pb.StepState) == ["UNSPECIFIED", *(s.name for s in StepState)]
    assert [pb.StepState[s.name].value for s in StepState] == list(range(1, 11))


SERVICES = {
    "TaskService": [
        "CreateTask",
        "CreateTasks",
        "GetTask",
        "ListTasks",
        "CancelTask",
        "GetTaskContext",
        "GetTaskSummary",
        "GetTaskRequestOutcome",
        "StreamTaskStatus",
    ],
    "StepService": ["GetStep", "ListSteps", "ResolveStep", "GetStepAudit"],
    "TemplateService": ["ListTemplates", "GetTemplate"],
    "HealthService": ["CheckHealth", "CheckLiveness", "CheckReadiness", "CheckDetailedHealth"],
    "AnalyticsService": ["GetPerformanceMetrics", "GetBottleneckAnalysis"],
    "DlqService": [
        "ListEntries",
        "GetEntryByTask",
        "UpdateInvestigation",
        "GetStats",
        "GetInvestigationQueue",
        "GetStalenessMonitoring",
    ],
    "ConfigService": ["GetConfig"],
}


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")


@pytest.mark.parametrize(("service", "rpcs"), SERVICES.items(), ids=list(SERVICES))
def test_every_service_has_a_base_and_a_stub(service: str, rpcs: list[str]) -> None:
    base = getattr(pb, f"{service}Base")
    stub = getattr(pb, f"{service}Stub")
    mapping = base().__mapping__()
    assert sorted(mapping) == sorted(f"/tasker.v1.{service}/{rpc}" for rpc in rpcs)
    for rpc in rpcs:
        assert callable(getattr(base, _snake(rpc)))
        assert callable(getattr(stub, _snake(rpc)))
        cardinality = mapping[f"/tasker.v1.{service}/{rpc}"].cardinality
        expected = (
            grpclib.const.Cardinality.UNARY_STREAM
            if rpc == "StreamTaskStatus"
            else grpclib.const.Cardinality.UNARY_UNARY
        )
        assert cardinality is expected


TASK_RESPONSE_FIELDS = [
    "task_uuid",
    "name",
    "namespace",
    "version",
    "status",
    "created_at",
    "updated_at",
    "completed_at",
    "context",
    "initiator",
    "source_system",
    "reason",
    "priority",
    "tags",
    "correlation_id",
    "parent_correlation_id",
    "total_steps",
    "pending_steps",
    "in_progress_steps",
    "completed_steps",
    "failed_steps",
    "ready_steps",
    "execution_status",
    "recommended_action",
    "completion_percentage",
    "health_status",
    "steps",
    "context_json",  # the context as JSON text: exact integers (Struct numbers are doubles)
]


def test_task_message_carries_every_task_response_field() -> None:
    assert list(pb.Task.__dataclass_fields__) == TASK_RESPONSE_FIELDS


def test_status_update_types() -> None:
    assert _names(pb.StatusUpdateType) == [
        "UNSPECIFIED",
        "TASK_STATE_CHANGE",
        "STEP_STATE_CHANGE",
        "TASK_COMPLETE",
        "TASK_ERROR",
    ]


def test_generated_messages_serialise() -> None:
    task = pb.Task(task_uuid="t", status=pb.TaskState.STEPS_IN_PROCESS, tags=["a"])
    assert pb.Task.parse(bytes(task)) == task
    request = pb.CreateTaskRequest(task=pb.TaskRequest(name="n"))
    assert request.wait is None
