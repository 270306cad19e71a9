"""The local CLI commands: db, template, config (run in-process through `main`)."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from tasker_cli.main import main
from tasker_worker.examples import templates_dir

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "templates"


def test_db_migrate_and_status(empty_db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["db", "status", "--database-url", empty_db_url]) == 1  # all pending
    assert "pending" in capsys.readouterr().out
    assert main(["db", "migrate", "--database-url", empty_db_url]) == 0
    out = capsys.readouterr().out
    assert "applied 0001" in out
    assert "applied function files common.sql, states.sql" in out
    assert main(["db", "migrate", "--database-url", empty_db_url]) == 0
    assert "up to date" in capsys.readouterr().out
    assert main(["db", "status", "--database-url", empty_db_url]) == 0


def test_template_validate_good_and_bad(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["template", "validate", str(templates_dir())]) == 0
    assert "linear_workflow" in capsys.readouterr().out
    bad = FIXTURES / "invalid" / "dependency_cycle.yaml"
    assert main(["template", "validate", str(bad)]) == 1
    assert "cycle" in capsys.readouterr().err
    assert main(["template", "validate", str(FIXTURES / "no-such-dir")]) == 1


def test_template_register(db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["template", "register", str(templates_dir()), "--database-url", db_url]) == 0
    assert "registered examples/linear_workflow:1.0.0" in capsys.readouterr().out
    with psycopg.connect(db_url) as conn:
        names = {r[0] for r in conn.execute("SELECT name FROM tasker.named_tasks")}
        queues = {r[0] for r in conn.execute("SELECT queue_name FROM pgmq.meta")}
    assert {"linear_workflow", "diamond_workflow", "flaky_workflow"} <= names
    assert "worker_examples_queue" in queues
    bad = FIXTURES / "invalid" / "unknown_dependency.yaml"
    assert main(["template", "register", str(bad), "--database-url", db_url]) == 1


def test_config_reference_and_validate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "reference"]) == 0
    out = capsys.readouterr().out
    assert "TASKER_QUEUES__VISIBILITY_TIMEOUT_SECONDS" in out
    good = tmp_path / "good.toml"
    good.write_text("[queues]\nbatch_size = 5\n")
    assert main(["config", "validate", str(good)]) == 0
    bad = tmp_path / "bad.toml"
    bad.write_text("[queues]\nbatch_size = -1\n")
    assert main(["config", "validate", str(bad)]) == 1
    assert "queues.batch_size" in capsys.readouterr().err
