"""REST and gRPC return the same data for the same task (and its steps, audit, DLQ entry).

REST speaks tasker-core's field names and spellings, gRPC Tasker's own: `tasker_names` maps
a REST body onto the gRPC names (renamed fields, bare arrays, nested summary, enum and
date-time spellings) before the values are compared."""

from __future__ import annotations

import dataclasses
import math
import re
from datetime import UTC, datetime
from typing import Any

import betterproto2

from tasker_gateway.grpc.convert import from_struct
from tasker_shared.contracts.generated.google.protobuf import Struct
from tasker_shared.contracts.generated.tasker import v1 as pb
from tests.gateway.conftest import Gateway, grpc_client
from tests.gateway.helpers import create_rest, open_dlq_entry, step_uuids, wait_state

_DEFAULTS: tuple[Any, ...] = ("", 0, 0.0, False, [], {})


def proto_plain(value: Any) -> Any:
    """A protobuf value as plain data: enums as lower-case names, Structs as JSON."""
    if isinstance(value, Struct):
        return from_struct(value)
    if isinstance(value, betterproto2.Enum):
        return None if value.value == 0 else value.name.lower()
    if isinstance(value, betterproto2.Message):
        return {f.name: proto_plain(getattr(value, f.name))
                for f in dataclasses.fields(value)}  # type: ignore[arg-type]
    if isinstance(value, list):
        return [proto_plain(v) for v in value]
    return value


_OPAQUE = frozenset({"context", "step_results", "results", "inputs", "metadata", "configuration",
                     "task_snapshot", "input_schema", "transition_metadata"})


def json_plain(value: Any, key: str = "") -> Any:
    if key in _OPAQUE:
        return value  # JSON documents travel as they are
    if isinstance(value, dict):
        return {k: json_plain(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [json_plain(v, key) for v in value]
    if isinstance(value, str) and (key.endswith("_at") or key in ("timestamp", "dlq_timestamp")):
        parsed = datetime.fromisoformat(value)
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)  # naive means UTC
    return value


def _snake(value: Any) -> Any:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", value).lower() if isinstance(value, str) else value


def _step(step: dict[str, Any]) -> dict[str, Any]:
    return {**step, "workflow_step_uuid": step["step_uuid"], "processed_at": step["completed_at"]}


def tasker_names(kind: str, body: Any) -> Any:
    """A tasker-core-shaped REST body under the names and spellings of the gRPC message."""
    if kind == "summary":
        steps = [{**s, "workflow_step_uuid": s["step_uuid"]} for s in body["steps"]]
        return {**body["task"], "execution_context": body["task"], "step_summaries": steps,
                "dlq_status": body["dlq"]}
    if kind == "steps":
        return {"steps": [_step(s) for s in body]}
    if kind == "step":
        return _step(body)
    if kind == "audit":
        return {"records": [{**r, "workflow_step_transition_uuid": r["transition_uuid"]}
                            for r in body]}
    if kind == "entry":
        return {**body, "dlq_reason": _snake(body["dlq_reason"]),
                "resolution_status": _snake(body["resolution_status"])}
    if kind == "template":
        return {**body, "steps": [{**s, "retryable": s["default_retryable"],
                                   "max_attempts": s["default_max_attempts"]}
                                  for s in body["steps"]]}
    return body


def differences(rest: Any, grpc: Any, path: str = "") -> list[str]:
    """Where the REST body and the gRPC message disagree (fields only REST has are skipped)."""
    if isinstance(rest, dict) and isinstance(grpc, dict):
        found = []
        for key, value in rest.items():
            if key in grpc:
                found += differences(value, grpc[key], f"{path}.{key}")
        return found
    if isinstance(rest, list) and isinstance(grpc, list):
        if len(rest) != len(grpc):
            return [f"{path}: {len(rest)} items vs {len(grpc)}"]
        return [d for i, (r, g) in enumerate(zip(rest, grpc, strict=True))
                for d in differences(r, g, f"{path}[{i}]")]
    if rest is None and (grpc is None or grpc in _DEFAULTS):
        return []
    if isinstance(rest, float | int) and isinstance(grpc, float | int):
        return [] if math.isclose(rest, grpc, abs_tol=0.5) else [f"{path}: {rest} != {grpc}"]
    return [] if rest == grpc else [f"{path}: {rest!r} != {grpc!r}"]


def same(kind: str, rest_body: Any, message: Any) -> None:
    rest, grpc = json_plain(tasker_names(kind, rest_body)), proto_plain(message)
    assert set(rest) & set(grpc), (sorted(rest), sorted(grpc))
    diffs = differences(rest, grpc)
    assert not diffs, "\n".join(diffs)


async def test_rest_and_grpc_agree(pipeline_gw: Gateway) -> None:
    gw = pipeline_gw
    task = (await create_rest(gw))["task_uuid"]
    await wait_state(gw, task, "complete")
    step = step_uuids(gw, task)["linear_step_2"]
    entry = open_dlq_entry(gw, task)
    async with gw.http() as http, grpc_client(gw.grpc_port) as rpc:
        pairs = [  # path, gRPC call, field of the reply holding the data, kind of body
            (f"/v1/tasks/{task}", rpc(rpc.tasks.get_task, pb.GetTaskRequest(task_uuid=task)),
             "task", "task"),
            (f"/v1/tasks/{task}/summary",
             rpc(rpc.tasks.get_task_summary, pb.GetTaskSummaryRequest(task_uuid=task)),
             "summary", "summary"),
            (f"/v1/tasks/{task}/context",
             rpc(rpc.tasks.get_task_context, pb.GetTaskContextRequest(task_uuid=task)), None,
             "context"),
            (f"/v1/tasks/{task}/workflow_steps",
             rpc(rpc.steps.list_steps, pb.ListStepsRequest(task_uuid=task)), None, "steps"),
            (f"/v1/tasks/{task}/workflow_steps/{step}",
             rpc(rpc.steps.get_step, pb.GetStepRequest(task_uuid=task, step_uuid=step)),
             "step", "step"),
            (f"/v1/tasks/{task}/workflow_steps/{step}/audit",
             rpc(rpc.steps.get_step_audit, pb.GetStepAuditRequest(task_uuid=task,
                                                                  step_uuid=step)), None,
             "audit"),
            ("/v1/tasks?namespace=examples",
             rpc(rpc.tasks.list_tasks, pb.ListTasksRequest(namespace="examples")), None,
             "tasks"),
            (f"/v1/dlq/task/{task}",
             rpc(rpc.dlq.get_entry_by_task, pb.GetDlqEntryByTaskRequest(task_uuid=task)),
             "entry", "entry"),
            ("/v1/templates/examples/linear_workflow/1.0.0",
             rpc(rpc.templates.get_template, pb.GetTemplateRequest(
                 namespace="examples", name="linear_workflow", version="1.0.0")), "template",
             "template"),
        ]
        for path, call, field, kind in pairs:
            response = await http.get(path)
            assert response.status_code == 200, path
            message = await call
            same(kind, response.json(), getattr(message, field) if field else message)
    assert entry
    body = response.json()
    assert body["name"] == "linear_workflow"
