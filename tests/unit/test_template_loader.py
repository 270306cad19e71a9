"""Finding and loading template files (the only part of templates that touches the disk)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tasker_shared.errors import TemplateError
from tasker_shared.templates_io import (
    find_template_files,
    load_template_file,
    load_templates,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "templates"


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    (tmp_path / "a" / "deep").mkdir(parents=True)
    shutil.copy(FIXTURES / "linear_workflow.yaml", tmp_path / "a" / "linear.yaml")
    shutil.copy(FIXTURES / "diamond_workflow.yaml", tmp_path / "a" / "deep" / "diamond.yml")
    shutil.copy(FIXTURES / "tree_workflow.yaml", tmp_path / "tree.YAML")
    (tmp_path / "a" / "notes.txt").write_text("not a template")
    return tmp_path


def test_directories_are_searched_recursively(tree: Path) -> None:
    assert find_template_files([tree]) == [
        tree / "a" / "deep" / "diamond.yml",
        tree / "a" / "linear.yaml",
        tree / "tree.YAML",
    ]


def test_files_and_globs(tree: Path) -> None:
    files = find_template_files(
        [tree / "a" / "notes.txt", str(tree / "**" / "*.yml"), tree / "a" / "notes.txt"]
    )
    assert files == [tree / "a" / "notes.txt", tree / "a" / "deep" / "diamond.yml"]
    assert find_template_files([str(tree / "a" / "*")]) == [
        tree / "a" / "deep" / "diamond.yml",  # a directory matched by the glob: searched
        tree / "a" / "linear.yaml",
        tree / "a" / "notes.txt",
    ]


def test_missing_paths_are_kept_and_empty_globs_add_nothing(tree: Path) -> None:
    (tree / "empty").mkdir()
    files = find_template_files([tree / "missing.yaml", str(tree / "*.json"), tree / "empty"])
    assert files == [tree / "missing.yaml"]


def test_load_templates(tree: Path) -> None:
    names = [t.name for t in load_templates([tree])]
    assert names == ["diamond_workflow", "linear_workflow", "tree_workflow"]


def test_load_templates_collects_errors_across_files(tree: Path) -> None:
    shutil.copy(FIXTURES / "invalid" / "unknown_dependency.yaml", tree / "bad1.yaml")
    shutil.copy(FIXTURES / "invalid" / "no_steps.yaml", tree / "bad2.yaml")
    shutil.copy(FIXTURES / "linear_workflow.yaml", tree / "copy.yaml")
    with pytest.raises(TemplateError) as info:
        load_templates([tree, tree / "nothing_here.yaml"])
    problems = info.value.problems
    assert any(p.startswith(f"{tree / 'bad1.yaml'}: step 'store'") for p in problems)
    assert f"{tree / 'bad2.yaml'}: steps must list at least one step" in problems
    assert (
        f"{tree / 'copy.yaml'}: template linear_workflow/linear_workflow:1.0.0 is also defined "
        f"in {tree / 'a' / 'linear.yaml'}" in problems
    )
    assert problems[-1].startswith(f"{tree / 'nothing_here.yaml'}: cannot read template file")
    assert "(template files)" in str(info.value)


def test_load_templates_of_nothing() -> None:
    assert load_templates([]) == []


def test_unreadable_files(tmp_path: Path) -> None:
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(TemplateError, match="cannot read template file"):
        load_template_file(binary)
    with pytest.raises(TemplateError) as info:
        load_template_file(tmp_path / "absent.yaml")
    assert info.value.problems[0].startswith(f"{tmp_path / 'absent.yaml'}: cannot read")


def test_domain_template_package_does_no_io() -> None:
    package = Path(__file__).resolve().parents[2] / "shared" / "tasker_shared" / "domain"
    forbidden = (
        "import trio",
        "import psycopg",
        "import socket",
        "open(",
        "read_text",
        "import os",
        "import glob",
        "pathlib",
    )
    for module in (package / "template").glob("*.py"):
        source = module.read_text()
        for word in forbidden:
            assert word not in source, f"{module.name} uses {word!r}"
