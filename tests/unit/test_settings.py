"""Settings: environment over TOML file, validation with messages naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from tasker_shared.errors import ConfigError
from tasker_shared.runtime.settings import DeploymentMode, load_settings


def test_defaults() -> None:
    s = load_settings()
    assert s.queues.deployment_mode is DeploymentMode.HYBRID
    assert s.queues.deployment_mode.listens and s.queues.deployment_mode.polls
    assert s.gateway.grpc_port == 9190


def test_toml_file_then_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "tasker.toml"
    path.write_text('[queues]\nbatch_size = 7\ndeployment_mode = "polling"\n'
                    '[worker]\nnamespaces = ["a", "b"]\n')
    monkeypatch.setenv("TASKER_QUEUES__BATCH_SIZE", "9")
    s = load_settings(config_path=path)
    assert s.queues.batch_size == 9  # environment wins over the file
    assert s.queues.deployment_mode is DeploymentMode.POLLING
    assert not s.queues.deployment_mode.listens
    assert s.worker.namespaces == ["a", "b"]


def test_database_url_shortcuts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://x@y/z")
    assert load_settings().database.url == "postgresql://x@y/z"
    monkeypatch.setenv("TASKER_DATABASE_URL", "postgresql://a@b/c")
    assert load_settings().database.url == "postgresql://a@b/c"


def test_invalid_value_names_the_key() -> None:
    with pytest.raises(ConfigError, match=r"queues\.batch_size"):
        load_settings(overrides={"queues": {"batch_size": 0}})


def test_unknown_key_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[queues]\nbatch_sise = 3\n")
    with pytest.raises(ConfigError, match="batch_sise"):
        load_settings(config_path=path)


def test_pool_bounds() -> None:
    with pytest.raises(ConfigError, match="pool_min"):
        load_settings(overrides={"database": {"pool_min": 9, "pool_max": 2}})


def test_missing_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings(config_path=tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[queues\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(config_path=bad)
