"""The handler check: template steps whose handler does not resolve (with a suggestion),
typed handlers requiring a dependency their step lacks, registered handlers no template
uses; `tasker worker --check` prints it and exits 1 on a step without a usable handler; the
worker's start-up check warns or refuses to start per `worker.handler_check`."""

from __future__ import annotations

from pathlib import Path

import pytest

from tasker_cli.main import main
from tasker_shared.domain.template.text import parse_template_text
from tasker_shared.errors import ConfigError
from tasker_worker.runtime.handler_check import check_at_start, check_handlers
from tasker_worker.sdk import HandlerRegistry, default_registry
from tests.unit import check_handlers as handlers

GOOD = """
name: orders
namespace_name: chk
version: "1.0.0"
steps:
  - {name: validate, handler: {callable: chk.validate}}
  - {name: charge, handler: {callable: chk.charge}, dependencies: [validate]}
"""
BAD = """
name: orders_bad
namespace_name: chk
version: "1.0.0"
steps:
  - {name: validate, handler: {callable: chk.validat}}
  - {name: charge, handler: {callable: chk.charge}}
  - {name: imported, handler: {callable: tests.unit.check_handlers.spare}}
  - {name: method, handler: {callable: chk.spare, method: run}}
"""


def _registry() -> HandlerRegistry:
    registry = HandlerRegistry()
    for name, func in (("chk.validate", handlers.validate), ("chk.charge", handlers.charge),
                       ("chk.spare", handlers.spare)):
        registry.register(name, func)
    return registry


def test_a_clean_set_of_templates_and_handlers() -> None:
    found = check_handlers(_registry(), [parse_template_text(GOOD, source="good")])
    assert found.ok
    assert found.unused == ["chk.spare"]
    assert found.lines() == [
        "unused: handler 'chk.spare' is registered but no template names it",
        "1 templates, 2 steps checked: 0 handlers not registered, 0 dependency mismatches, "
        "1 handlers unused"]


def test_missing_handlers_and_dependency_mismatches_are_found() -> None:
    found = check_handlers(_registry(), [parse_template_text(BAD, source="bad")])
    assert not found.ok
    assert [(p.step, p.reason) for p in found.missing] == [
        ("validate", "not registered, and no module 'chk' to import (did you mean "
                     "'chk.validate'?)"),
        ("method", "it is a function; it has no method 'run'")]
    # `audit` is optional (Checked | None): only `validate` is required and missing.
    assert [(p.step, p.reason) for p in found.mismatched] == [
        ("charge", "declares dependencies validate the step does not have (its "
                   "dependencies: none)")]
    assert found.unused == ["chk.validate"]  # typed wrong; chk.spare is named (with a method it lacks)


def test_the_start_up_check_warns_fails_or_is_off() -> None:
    bad = [parse_template_text(BAD, source="bad")]
    warned = check_at_start(_registry(), bad, environment="test", mode="warn")
    assert warned is not None and not warned.ok
    with pytest.raises(ConfigError, match=r"handler check failed \(worker.handler_check = "
                                          r"fail\): chk/orders_bad:1.0.0 step 'validate'"):
        check_at_start(_registry(), bad, environment="test", mode="fail")
    assert check_at_start(_registry(), bad, environment="test", mode="off") is None


def test_tasker_worker_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "good.yaml").write_text(GOOD)
    (tmp_path / "bad.yaml").write_text(BAD)
    args = ["worker", "--check", "--handlers", "tests.unit.check_handlers", "--namespace", "chk"]
    assert main([*args, "--templates", str(tmp_path / "good.yaml")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "unused: handler 'chk.spare' is registered but no template names it" in out
    assert out[-1].startswith("1 templates, 2 steps checked: 0 handlers not registered")
    assert main([*args, "--templates", str(tmp_path / "bad.yaml")]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0] == ("not registered: chk/orders_bad:1.0.0 step 'validate': handler "
                      "'chk.validat': not registered, and no module 'chk' to import (did "
                      "you mean 'chk.validate'?)")
    assert "chk.spare" in default_registry
