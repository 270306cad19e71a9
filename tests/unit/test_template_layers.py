"""domain/template modules import one another one way: no import cycle, counting imports
inside functions and under TYPE_CHECKING (checked on the source with `ast`)."""

from __future__ import annotations

from pathlib import Path

from tests.unit.test_import_contracts import imported_modules

TEMPLATE = Path(__file__).resolve().parents[2] / "shared" / "tasker_shared" / "domain" / "template"
PACKAGE = "tasker_shared.domain.template"


def _graph() -> dict[str, set[str]]:
    """Module -> the modules of the package it imports."""
    modules = {path.stem: path for path in TEMPLATE.glob("*.py") if path.stem != "__init__"}
    return {name: {module.removeprefix(f"{PACKAGE}.").split(".")[0]
                   for _, module in imported_modules(path) if module.startswith(f"{PACKAGE}.")}
            & set(modules) - {name}
            for name, path in modules.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle, as the modules along it, or None."""
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> list[str] | None:
        if name in path:
            return [*path[path.index(name):], name]
        if name in done:
            return None
        for target in sorted(graph[name]):
            found = visit(target, [*path, name])
            if found is not None:
                return found
        done.add(name)
        return None

    for start in sorted(graph):
        found = visit(start, [])
        if found is not None:
            return found
    return None


def test_the_graph_sees_the_imports() -> None:
    graph = _graph()
    assert {"environments", "schemas", "serialize", "model"} <= graph["task"]
    assert "task" in graph["parse"]
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_template_modules_import_one_another_one_way() -> None:
    assert _cycle(_graph()) is None
