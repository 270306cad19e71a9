"""The environment (template `environments` overrides) is read from TASKER_ENVIRONMENT or,
as tasker-core's deployments set it, TASKER_ENV."""

from __future__ import annotations

from pathlib import Path

import pytest

from tasker_shared.runtime.settings import Settings, load_settings


@pytest.fixture(autouse=True)
def _no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TASKER_ENVIRONMENT", raising=False)
    monkeypatch.delenv("TASKER_ENV", raising=False)


def test_tasker_env_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().environment == "development"
    monkeypatch.setenv("TASKER_ENV", "test")
    assert load_settings().environment == "test"
    assert Settings().environment == "test"


def test_tasker_environment_wins_over_tasker_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TASKER_ENV", "test")
    monkeypatch.setenv("TASKER_ENVIRONMENT", "production")
    assert load_settings().environment == "production"


def test_file_and_overrides_still_name_it_environment(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "tasker.toml"
    path.write_text('environment = "staging"\n')
    assert load_settings(config_path=path).environment == "staging"
    monkeypatch.setenv("TASKER_ENV", "test")
    assert load_settings(config_path=path).environment == "test"  # environment over file
    assert load_settings(overrides={"environment": "qa"}).environment == "qa"
