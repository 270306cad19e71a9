"""Template files on disk: find YAML template files and load them (the I/O half of
`tasker_shared.domain.template`, which stays pure)."""

from __future__ import annotations

import glob
from collections.abc import Iterable
from pathlib import Path

from tasker_shared.domain.template.parse import template_error
from tasker_shared.domain.template.task import TaskTemplate
from tasker_shared.domain.template.text import parse_template_text
from tasker_shared.errors import TemplateError

YAML_SUFFIXES = (".yml", ".yaml")
_GLOB_CHARS = frozenset("*?[")


def load_template_file(path: str | Path) -> TaskTemplate:
    """Read and parse one template file; TemplateError names the file in every problem."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        problem = f"{file}: cannot read template file: {exc}"
        raise TemplateError(problem, problems=[problem]) from None
    return parse_template_text(text, source=str(file))


def find_template_files(patterns: Iterable[str | Path]) -> list[Path]:
    """Files named by `patterns`: directories are searched recursively for *.yml/*.yaml,
    glob patterns (with `**`) are expanded, and any other path is returned as given, so a
    missing file surfaces as a read error when it is loaded. In order, without duplicates.
    """
    found: dict[Path, None] = {}
    for pattern in patterns:
        for match in _expand(str(pattern)):
            found.setdefault(match, None)
    return list(found)


def _expand(pattern: str) -> list[Path]:
    if any(char in pattern for char in _GLOB_CHARS):
        candidates = [Path(p) for p in sorted(glob.glob(pattern, recursive=True))]
    else:
        candidates = [Path(pattern)]
    out: list[Path] = []
    for candidate in candidates:
        if candidate.is_dir():
            out.extend(sorted(p for p in candidate.rglob("*") if p.is_file() and _is_yaml(p)))
        else:
            out.append(candidate)
    return out


def _is_yaml(path: Path) -> bool:
    return path.suffix.lower() in YAML_SUFFIXES


def load_templates(patterns: Iterable[str | Path]) -> list[TaskTemplate]:
    """Load every template file `patterns` name; one TemplateError collects all problems,
    including templates that share a (namespace, name, version)."""
    problems: list[str] = []
    templates: list[TaskTemplate] = []
    seen: dict[tuple[str, str, str], str] = {}
    for file in find_template_files(patterns):
        try:
            template = load_template_file(file)
        except TemplateError as exc:
            problems.extend(exc.problems)
            continue
        identity = (template.namespace, template.name, template.version)
        if identity in seen:
            problems.append(f"{file}: template {template.key} is also defined in {seen[identity]}")
            continue
        seen[identity] = str(file)
        templates.append(template)
    if problems:
        raise template_error("(template files)", problems)
    return templates
