"""Interop with the official grpcio library: stubs generated at test time by grpcio-tools from
the same .proto files create, get, list, stream and cancel a task against the gateway, and
the standard grpc.health.v1 probe answers. The grpcio client runs in its own process
(tests/gateway/grpcio_client.py) because grpclib's and grpcio's health descriptors collide
in one protobuf descriptor pool."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import trio

from tests.gateway.conftest import Gateway

PROTO_ROOT = Path(__file__).resolve().parents[2] / "proto"
CLIENT = Path(__file__).with_name("grpcio_client.py")


@pytest.fixture(scope="module")
def stub_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("grpcio_stubs")
    files = [str(p.relative_to(PROTO_ROOT)) for p in (PROTO_ROOT / "tasker" / "v1").glob("*.proto")]
    subprocess.run([sys.executable, "-m", "grpc_tools.protoc", f"-I{PROTO_ROOT}",
                    f"--python_out={out}", f"--grpc_python_out={out}", *files],
                   check=True, capture_output=True)
    assert (out / "tasker" / "v1" / "tasks_pb2_grpc.py").exists()
    return out


async def test_grpcio_client_against_the_gateway(gw: Gateway, stub_dir: Path) -> None:
    done = await trio.run_process([sys.executable, str(CLIENT), str(gw.grpc_port),
                                   str(stub_dir)], capture_stdout=True, capture_stderr=True,
                                  check=False)
    assert done.returncode == 0, done.stderr.decode()
    report = json.loads(done.stdout)
    assert report["health"] == {"": "SERVING", "tasker.v1.TaskService": "SERVING"}
    assert report["health_unknown"] == "NOT_FOUND"
    assert report["created"] == "CREATE_TASK_STATUS_CREATED"
    assert report["got"] == {"status": "TASK_STATE_STEPS_IN_PROCESS", "even_number": 2.0,
                             "steps": 4}
    assert report["listed"]["ids"] == [report["listed"]["task_uuid"]]
    assert report["listed"]["total"] == 1
    assert report["cancelled"] == "TASK_STATE_CANCELLED"
    updates = report["updates"]
    assert updates[0]["type"] == "STATUS_UPDATE_TYPE_TASK_STATE_CHANGE"
    assert updates[-1] == {"type": "STATUS_UPDATE_TYPE_TASK_ERROR",
                           "task_state": "TASK_STATE_CANCELLED", "step_name": ""}
    steps = {u["step_name"] for u in updates
             if u["type"] == "STATUS_UPDATE_TYPE_STEP_STATE_CHANGE"}
    assert steps == {f"linear_step_{i}" for i in range(1, 5)}
    assert report["bad_uuid"] == "INVALID_ARGUMENT"
    rows = gw.sql("SELECT metadata FROM tasker.task_transitions WHERE to_state = 'cancelled'")
    assert rows[0]["metadata"]["reason"] == "interop"


async def test_health_probe_reports_draining(gw: Gateway) -> None:
    gw.runtime.state = "draining"
    script = ("import grpc, sys; from grpc_health.v1 import health_pb2 as h, health_pb2_grpc as g;"
              f"c = grpc.insecure_channel('127.0.0.1:{gw.grpc_port}');"
              "print(h.HealthCheckResponse.ServingStatus.Name(g.HealthStub(c).Check("
              "h.HealthCheckRequest(service=''), timeout=10).status))")
    try:
        done = await trio.run_process([sys.executable, "-c", script], capture_stdout=True,
                                      capture_stderr=True, check=False)
    finally:
        gw.runtime.state = "normal"
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout.decode().strip() == "NOT_SERVING"
