"""Parse a template from YAML text (no file access): syntax errors carry line numbers."""

from __future__ import annotations

from typing import Any

import yaml

from ...errors import TemplateError
from .bounds import YamlBoundsError, check_yaml_bounds
from .parse import parse_template, template_error
from .preview import label
from .task import TaskTemplate

# The libyaml-backed loader is much faster; fall back to pure Python when it is missing.
_BaseLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_BaseLoader):  # type: ignore[misc]
    """Safe loader that records duplicate mapping keys instead of silently keeping the last."""

    duplicates: list[str]

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[tuple[str, str]] = set()
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode):
                key = (key_node.tag, key_node.value)
                if key in seen:
                    mark = key_node.start_mark
                    self.duplicates.append(
                        f"line {mark.line + 1}, column {mark.column + 1}: "
                        f"duplicate key '{label(key_node.value)}' (the later value would "
                        "silently win)"
                    )
                seen.add(key)
        return super().construct_mapping(node, deep=deep)  # type: ignore[no-any-return]


def load_yaml(text: str, *, source: str) -> tuple[Any, list[str]]:
    """The single YAML document in `text` and any duplicate-key problems found in it.

    Raises TemplateError (with line and column) when the text is not readable YAML or
    breaks a bound of `bounds` (size, nesting, alias expansion), which is checked on the
    event stream before any value is built.
    """
    loader = None
    try:
        check_yaml_bounds(text, _BaseLoader)
        loader = _Loader(text)
        loader.duplicates = []
        data = loader.get_single_data()
        duplicates: list[str] = loader.duplicates
    except YamlBoundsError as exc:
        raise _syntax_error(source, f"YAML refused: {exc}") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        what = ": ".join(p for p in (exc.context, exc.problem) if p)
        raise _syntax_error(source, f"{where}YAML syntax error: {what}") from None
    except (yaml.YAMLError, ValueError, OverflowError, RecursionError, TypeError) as exc:
        raise _syntax_error(source, f"YAML could not be read: {label(str(exc), 500)}") from None
    finally:
        if loader is not None:
            loader.dispose()
    return data, [f"{source}: {d}" for d in duplicates]


def _syntax_error(source: str, text: str) -> TemplateError:
    problem = f"{source}: {text}"
    return TemplateError(f"invalid task template {problem}", problems=[problem])


def parse_template_text(text: str, *, source: str) -> TaskTemplate:
    """Parse YAML text into a validated template; TemplateError lists every problem."""
    data, duplicates = load_yaml(text, source=source)
    try:
        template = parse_template(data, source=source)
    except TemplateError as exc:
        if not duplicates:
            raise
        problems = duplicates + exc.problems
    else:
        if not duplicates:
            return template
        problems = duplicates
    raise template_error(source, problems)
