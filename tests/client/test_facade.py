"""The facades: one declared call becomes a documented method of each flavour; lazy exports."""

from __future__ import annotations

import inspect
import sys
from pathlib import Path

import pytest

import tasker_client
from tasker_client import AioTaskerClient, ConfigError, SyncTaskerClient
from tasker_client.calls import tasks
from tasker_client.facade import Streaming, Unary
from tasker_client.signing import sign_token
from tests.client.conftest import free_port


def test_class_access_gives_the_declaration() -> None:
    declared = AioTaskerClient.create_task
    assert isinstance(declared, Unary)
    assert declared.__doc__ == tasks.create_task.__doc__
    assert isinstance(SyncTaskerClient.watch_task, Streaming)


def test_bound_methods_show_the_builder_signature_and_doc() -> None:
    client = AioTaskerClient(f"127.0.0.1:{free_port()}")
    method = client.get_task
    assert method.__name__ == "get_task"
    assert method.__doc__ == tasks.get_task.__doc__
    signature = inspect.signature(method)
    assert list(signature.parameters) == ["task_uuid", "call_timeout"]
    assert signature.return_annotation is inspect.Signature.empty
    assert inspect.iscoroutinefunction(method)
    with SyncTaskerClient(f"127.0.0.1:{free_port()}") as sync:
        assert not inspect.iscoroutinefunction(sync.get_task)
        assert list(inspect.signature(sync.watch_task).parameters) == [
            "task_uuid", "include_steps", "call_timeout"]


def test_lazy_exports() -> None:
    assert set(dir(tasker_client)) == set(tasker_client.__all__)
    with pytest.raises(AttributeError, match="no_such_name"):
        _ = tasker_client.no_such_name  # type: ignore[attr-defined]


def test_signing_without_pyjwt_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "jwt", None)
    with pytest.raises(ConfigError, match=r"tasker-client\[signing\]"):
        sign_token(tmp_path / "key.pem")
