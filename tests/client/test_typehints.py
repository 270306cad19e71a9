"""betterproto2 resolves a message class's annotations once per class (tasker_client.typehints),
with results identical to resolving them on every call."""

from __future__ import annotations

from typing import get_type_hints

import betterproto2

from tasker_client.proto.tasker.v1 import CreateTasksResponse, CreateTasksResult, Task
from tasker_client.typehints import cache_type_hints


def _response() -> CreateTasksResponse:
    task = Task(task_uuid="0191b3c4", name="linear_workflow", namespace="examples",
                version="1.0.0")
    return CreateTasksResponse(results=[CreateTasksResult(index=i, task=task,
                                                          request_id=f"r{i}")
                                        for i in range(3)])


def test_annotations_are_resolved_once_per_class_and_unchanged() -> None:
    cache_type_hints()
    cache_type_hints()  # idempotent: one cache, not a cache of a cache
    first = Task._type_hints()
    assert Task._type_hints() is first  # resolved once
    assert first == get_type_hints(Task, vars(__import__(Task.__module__, fromlist=["_"])), {})
    assert CreateTasksResult._type_hints() is not first  # per class


def test_messages_convert_and_parse_as_before() -> None:
    cache_type_hints()
    message = _response()
    plain = message.to_dict()
    assert plain["results"][2]["task"]["name"] == "linear_workflow"
    assert CreateTasksResponse.from_dict(plain) == message
    assert CreateTasksResponse.parse(bytes(message)) == message
    assert isinstance(CreateTasksResponse.from_dict(plain).results[0].task, betterproto2.Message)
