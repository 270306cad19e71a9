"""Hostile template input (alias bombs, deep nesting, huge scalars) is refused quickly and in
bounded memory with a clear TemplateError.

Each hostile case runs in a child process under a memory limit (RLIMIT_AS) and a timeout,
so a regression fails the test instead of exhausting the machine."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from tasker_shared.domain.template import parse_template, parse_template_text
from tasker_shared.domain.template.bounds import (
    MAX_EXPANDED_NODES,
    MAX_TEMPLATE_CHARS,
    MAX_YAML_DEPTH,
    YamlBoundsError,
    check_yaml_bounds,
)
from tasker_shared.domain.template.preview import show
from tasker_shared.errors import TemplateError
from tasker_shared.templates_io import load_template_file

ROOT = Path(__file__).resolve().parents[2]
MEMORY_LIMIT = 1_500_000_000  # bytes of address space for the child (a bomb needs far more)
TIMEOUT = 60  # seconds; a refused bomb takes milliseconds, the old code took minutes

# Nine levels of nine: 9**9 (387 million) strings once expanded, 600 bytes of YAML.
LAUGHS = textwrap.dedent(
    """\
    l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]
    l1: &l1 [*l0, *l0, *l0, *l0, *l0, *l0, *l0, *l0, *l0]
    l2: &l2 [*l1, *l1, *l1, *l1, *l1, *l1, *l1, *l1, *l1]
    l3: &l3 [*l2, *l2, *l2, *l2, *l2, *l2, *l2, *l2, *l2]
    l4: &l4 [*l3, *l3, *l3, *l3, *l3, *l3, *l3, *l3, *l3]
    l5: &l5 [*l4, *l4, *l4, *l4, *l4, *l4, *l4, *l4, *l4]
    l6: &l6 [*l5, *l5, *l5, *l5, *l5, *l5, *l5, *l5, *l5]
    l7: &l7 [*l6, *l6, *l6, *l6, *l6, *l6, *l6, *l6, *l6]
    l8: &l8 [*l7, *l7, *l7, *l7, *l7, *l7, *l7, *l7, *l7]
    """
)


def _template(extra: str = "", *, description: str = "x", step_name: str = "a") -> str:
    return (
        "name: t\nnamespace_name: ns\nversion: '1'\n"
        f"description: {description}\n"
        f"steps:\n  - name: {step_name}\n    handler: {{callable: x.A}}\n{extra}"
    )


def _bomb_in(where: str) -> str:
    """A template whose `where` field is the billion-laughs value (anchors kept under an
    ignored key, as an attacker would)."""
    anchors = "x_anchors:\n" + textwrap.indent(LAUGHS, "  ")
    if where == "description":
        return anchors + _template(description="*l8")
    if where == "input_schema":
        return anchors + _template("input_schema: {type: object, properties: {a: *l8}}\n")
    if where == "step name":
        return anchors + _template(step_name="*l8")
    raise AssertionError(where)


TEXT_CASES: dict[str, tuple[str, str]] = {
    "laughs in description": (_bomb_in("description"), "with its aliases expanded"),
    "laughs in input_schema": (_bomb_in("input_schema"), "with its aliases expanded"),
    "laughs in a step name": (_bomb_in("step name"), "with its aliases expanded"),
    "100,000 [": ("name: " + "[" * 100_000, "nesting depth"),
    "deep block sequences": (
        "name: t\ndescription:\n  " + "- " * 500 + "x\n",
        f"nested more than {MAX_YAML_DEPTH} levels deep",
    ),
    "huge scalar": (
        _template(description="x" * (50 * MAX_TEMPLATE_CHARS)),
        f"at most {MAX_TEMPLATE_CHARS} are allowed",
    ),
    "recursive alias": (_template(description="&r [x, *r]"), "alias *r refers to a collection"),
    "huge expanded text": (
        "s: &s " + "y" * 500_000 + "\n" + _template(description="[" + ", ".join(["*s"] * 20) + "]"),
        "characters of text with its aliases expanded",
    ),
}

# The same bombs handed to parse_template as Python values (as a caller holding data, not
# text, would): the values share references, so every walk and message must be bounded.
DATA_CASES = {
    "shared-reference bomb as description": "description=bomb",
    "shared-reference bomb as step name": "steps=[{'name': bomb, 'handler': {'callable': 'x'}}]",
    "two distinct bombs as type and step_type": (
        "steps=[{'name': 'a', 'handler': {'callable': 'x'}, 'type': bomb, 'step_type': bomb2}]"
    ),
    "huge integer as name": "name=10 ** 100_000",
}

_CHILD = """
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, ({limit}, {limit}))
from tasker_shared.domain.template import parse_template, parse_template_text
from tasker_shared.errors import TemplateError

def laughs():
    value = ["lol"] * 9
    for _ in range(12):
        value = [value] * 9
    return value

try:
    if sys.argv[1] == "text":
        parse_template_text(sys.stdin.read(), source="bomb.yaml")
    else:
        bomb, bomb2 = laughs(), laughs()
        data = dict(name="t", namespace_name="ns", version="1",
                    steps=[{{"name": "a", "handler": {{"callable": "x"}}}}])
        data.update(eval("dict(" + sys.argv[2] + ")"))
        parse_template(data, source="bomb.yaml")
except TemplateError as exc:
    print(str(exc)[:4000])
    sys.exit(0)
print("accepted")
sys.exit(3)
"""


def _run_child(args: list[str], stdin: str = "") -> str:
    code = _CHILD.format(limit=MEMORY_LIMIT)
    try:
        done = subprocess.run(
            [sys.executable, "-c", code, *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            cwd=ROOT,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"not refused within {TIMEOUT} s")
    assert done.returncode == 0, (done.returncode, done.stdout[-2000:], done.stderr[-2000:])
    return done.stdout


@pytest.mark.parametrize("case", sorted(TEXT_CASES))
def test_hostile_yaml_is_refused_quickly(case: str) -> None:
    text, expected = TEXT_CASES[case]
    out = _run_child(["text"], text)
    assert out.startswith("invalid task template bomb.yaml: ")
    assert expected in out
    assert len(out) < 1000


@pytest.mark.parametrize("case", sorted(DATA_CASES))
def test_hostile_values_get_bounded_messages(case: str) -> None:
    out = _run_child(["data", DATA_CASES[case]])
    assert out.startswith("invalid task template bomb.yaml")
    assert len(out) < 2000


def test_billion_laughs_description_names_where_it_stopped() -> None:
    with pytest.raises(TemplateError) as info:
        parse_template_text(_bomb_in("description"), source="b.yaml")
    (problem,) = info.value.problems
    assert problem.startswith("b.yaml: YAML refused: line ")
    assert f"more than {MAX_EXPANDED_NODES} values" in problem


def test_moderate_aliases_and_merge_keys_still_load() -> None:
    text = textwrap.dedent(
        """\
        name: t
        namespace_name: ns
        version: '1'
        x_defaults:
          retry: &retry {max_attempts: 5, backoff: linear}
          handler: &handler {callable: x.Handler, initialization: {tags: &tags [a, b, c]}}
        steps:
          - {name: a, handler: *handler, retry: *retry}
          - name: b
            dependencies: [a]
            handler: {<<: *handler, method: other}
            retry: {<<: *retry, max_attempts: 2}
        """
    )
    template = parse_template_text(text, source="t.yaml")
    a, b = template.steps
    assert a.retry.max_attempts == 5 and b.retry.max_attempts == 2
    assert b.handler.method == "other"
    assert b.handler.initialization == {"tags": ["a", "b", "c"]}


def test_every_reference_template_still_loads() -> None:
    files = sorted((ROOT / "tests" / "fixtures" / "templates").glob("*.yaml"))
    files += sorted((ROOT / "tests" / "e2e" / "templates").rglob("*.yaml"))
    assert len(files) > 20
    for file in files:
        assert load_template_file(file).steps, file


def test_show_is_bounded_for_any_value() -> None:
    shared: Any = ["lol"] * 9
    for _ in range(30):  # 9**31 leaves: only a bounded walk can render it
        shared = [shared] * 9
    recursive: list[Any] = []
    recursive.append(recursive)
    assert show(shared) == "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[['lol', 'lol', 'lol', 'lol'..."
    assert show(recursive).startswith("[[[[") and len(show(recursive)) == 60
    assert show("z" * 10_000_000) == "'" + "z" * 56 + "..."
    assert show(10**100_000) == "<an integer of 332193 bits>"
    assert show({"a": [1, 2.5, None, True]}) == "{'a': [1, 2.5, None, True]}"
    assert show(object()) == "<a object>"


def test_long_keys_in_problem_paths_are_clipped() -> None:
    key = "k" * 100_000
    items = [float("nan")] * 3
    with pytest.raises(TemplateError) as info:
        parse_template(
            {
                "name": "t",
                "namespace_name": "ns",
                "version": "1",
                "steps": [{"name": "a", "handler": {"callable": "x"}, "composition": {key: items}}],
            },
            source="t.yaml",
        )
    problems = info.value.problems
    assert len(problems) == 3
    assert all(len(p) < 200 for p in problems)
    assert problems[2] == (
        "t.yaml: step 'a': composition." + "k" * 61 + "...[2] must be a finite number, got nan"
    )


def test_pure_python_parser_is_bounded_too() -> None:
    """Without libyaml (which stops at 1,000 flow levels itself) the event check bounds depth."""
    with pytest.raises(YamlBoundsError, match=f"nested more than {MAX_YAML_DEPTH} levels deep"):
        check_yaml_bounds("a: " + "[" * 10_000, yaml.SafeLoader)
    with pytest.raises(YamlBoundsError, match="with its aliases expanded"):
        check_yaml_bounds(_bomb_in("description"), yaml.SafeLoader)
    check_yaml_bounds(_template(), yaml.SafeLoader)
