"""A client built only on the official grpcio library (run as a separate process by
test_grpcio_interop: grpclib's and grpcio's health protos cannot share one process).

Usage: python grpcio_client.py PORT STUB_DIR; prints a JSON report of what it saw.
"""

from __future__ import annotations

import json
import sys
import threading
from typing import Any

import grpc
from google.protobuf import struct_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc


def main(port: int, stub_dir: str) -> dict[str, Any]:
    sys.path.insert(0, stub_dir)
    from tasker.v1 import common_pb2, messages_pb2, tasks_pb2, tasks_pb2_grpc

    report: dict[str, Any] = {}
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        report["health"] = {
            service: health_pb2.HealthCheckResponse.ServingStatus.Name(health.Check(
                health_pb2.HealthCheckRequest(service=service), timeout=10).status)
            for service in ("", "tasker.v1.TaskService")}
        try:
            health.Check(health_pb2.HealthCheckRequest(service="no.such.Service"), timeout=10)
        except grpc.RpcError as exc:
            report["health_unknown"] = exc.code().name

        stub = tasks_pb2_grpc.TaskServiceStub(channel)
        context = struct_pb2.Struct()
        context.update({"even_number": 2})
        created = stub.CreateTask(tasks_pb2.CreateTaskRequest(task=messages_pb2.TaskRequest(
            name="linear_workflow", namespace="examples", version="1.0.0", context=context)),
            timeout=10)
        task_uuid = created.task_uuid
        report["created"] = tasks_pb2.CreateTaskStatus.Name(created.status)
        got = stub.GetTask(tasks_pb2.GetTaskRequest(task_uuid=task_uuid), timeout=10)
        report["got"] = {"status": common_pb2.TaskState.Name(got.task.status),
                         "even_number": got.task.context["even_number"],
                         "steps": len(got.task.steps)}
        listed = stub.ListTasks(tasks_pb2.ListTasksRequest(namespace="examples"), timeout=10)
        report["listed"] = {"ids": [t.task_uuid for t in listed.tasks],
                            "total": listed.pagination.total_count, "task_uuid": task_uuid}

        updates: list[Any] = []
        first = threading.Event()

        def watch() -> None:
            stream = stub.StreamTaskStatus(tasks_pb2.StreamTaskStatusRequest(
                task_uuid=task_uuid, include_steps=True), timeout=20)
            for update in stream:
                updates.append(update)
                first.set()

        watcher = threading.Thread(target=watch)
        watcher.start()
        first.wait(10)
        cancelled = stub.CancelTask(tasks_pb2.CancelTaskRequest(task_uuid=task_uuid,
                                                                reason="interop"), timeout=10)
        watcher.join(20)
        report["cancelled"] = common_pb2.TaskState.Name(cancelled.task.status)
        report["updates"] = [{
            "type": tasks_pb2.StatusUpdateType.Name(u.update_type),
            "task_state": common_pb2.TaskState.Name(u.task_state),
            "step_name": u.step_name} for u in updates]
        try:
            stub.GetTask(tasks_pb2.GetTaskRequest(task_uuid="not-a-uuid"), timeout=10)
        except grpc.RpcError as exc:
            report["bad_uuid"] = exc.code().name
    return report


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]), sys.argv[2])))
