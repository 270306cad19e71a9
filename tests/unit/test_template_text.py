"""Parsing templates from YAML text: syntax errors, duplicate keys, YAML-specific values."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tasker_shared.domain.template import parse_template, parse_template_text
from tasker_shared.errors import TemplateError


def _minimal(**top: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "t",
        "namespace_name": "ns",
        "version": "1.0.0",
        "steps": [{"name": "a", "handler": {"callable": "x.A"}}],
    }
    data.update(top)
    return data


def _step(**fields: Any) -> dict[str, Any]:
    step: dict[str, Any] = {"name": "a", "handler": {"callable": "x.A"}}
    step.update(fields)
    return step


def test_yaml_values_are_normalised_to_json() -> None:
    text = """
name: t
namespace_name: ns
version: "1"
steps:
  - name: a
    handler:
      callable: x.A
      initialization:
        when: 2024-01-02
        at: 2024-01-02T03:04:05Z
        pair: !!python/tuple [1, 2]
"""
    with pytest.raises(TemplateError):  # python tags are refused by the safe loader
        parse_template_text(text, source="t.yaml")
    t = parse_template_text(text.replace("!!python/tuple ", ""), source="t.yaml")
    init = t.step("a").handler.initialization
    assert init == {"when": "2024-01-02", "at": "2024-01-02T03:04:05+00:00", "pair": [1, 2]}
    tupled = parse_template(
        _minimal(steps=[_step(handler={"callable": "x", "initialization": {"t": (1, 2)}})])
    )
    assert tupled.step("a").handler.initialization == {"t": [1, 2]}


def test_parse_template_text_reports_yaml_errors_with_position() -> None:
    with pytest.raises(TemplateError) as info:
        parse_template_text("name: [unclosed\n", source="broken.yaml")
    (problem,) = info.value.problems
    assert problem.startswith("broken.yaml: line 2, column 1: YAML syntax error")


def test_parse_template_text_multiple_documents() -> None:
    with pytest.raises(TemplateError, match=r"YAML syntax error.*single document"):
        parse_template_text("a: 1\n---\nb: 2\n", source="two.yaml")


def test_parse_template_text_unreadable_scalars() -> None:
    # The timestamp pattern matches but is not a real date: PyYAML raises ValueError.
    with pytest.raises(TemplateError, match="YAML could not be read"):
        parse_template_text("when: 2024-13-45\n", source="date.yaml")


def test_parse_template_text_empty_document() -> None:
    with pytest.raises(TemplateError) as info:
        parse_template_text("", source="empty.yaml")
    assert info.value.problems == [
        "empty.yaml: a task template must be a mapping, but the document is empty"
    ]


def test_duplicate_keys_are_reported_with_other_problems() -> None:
    text = yaml.safe_dump(_minimal(name="")) + "name: again\n"
    with pytest.raises(TemplateError) as info:
        parse_template_text(text, source="dup.yaml")
    assert len(info.value.problems) == 1
    assert "duplicate key 'name'" in info.value.problems[0]
    text = "name: ''\nname: ''\nnamespace_name: ns\nversion: '1'\nsteps: []\n"
    with pytest.raises(TemplateError) as info:
        parse_template_text(text, source="dup.yaml")
    problems = info.value.problems
    assert problems[0] == (
        "dup.yaml: line 2, column 1: duplicate key 'name' (the later value would silently win)"
    )
    assert "dup.yaml: steps must list at least one step" in problems


def test_complex_yaml_keys_are_not_duplicate_checked_but_still_refused() -> None:
    text = "? [a, b]\n: 1\n? [a, b]\n: 2\n"
    with pytest.raises(TemplateError, match="found unhashable key"):
        parse_template_text(text, source="complex.yaml")
