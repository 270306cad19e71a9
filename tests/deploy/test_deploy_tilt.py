"""The Tiltfile, evaluated with recording stand-ins for Tilt's builtins."""

from __future__ import annotations

import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tasker_shared.runtime.ports import GATEWAY_GRPC_PORT, HEALTH_PORTS, SERVICE_NAMES

from .deploy_support import (
    REPO,
    TILTFILE,
    Rendered,
    TiltCalls,
    evaluate_tiltfile,
    exec_form,
    stages,
)

TILT_DIR = TILTFILE.parent


def local(path: str) -> Path:
    return (TILT_DIR / path).resolve()


def image_build(tilt: TiltCalls) -> tuple[tuple[Any, ...], dict[str, Any]]:
    builds = tilt.named("docker_build_with_restart") + tilt.named("docker_build")
    assert len(builds) == 1, "one image for every service"
    return builds[0]


def steps(kwargs: dict[str, Any], builtin: str) -> list[dict[str, Any]]:
    return [s for s in kwargs.get("live_update", []) if s["builtin"] == builtin]


def resources(tilt: TiltCalls) -> dict[str, dict[str, Any]]:
    out = {}
    for args, kwargs in tilt.named("k8s_resource"):
        name = args[0] if args else kwargs["workload"]
        assert name not in out, f"k8s_resource({name!r}) declared twice"
        out[name] = kwargs
    return out


def test_tiltfile_evaluates_with_known_builtins_only() -> None:
    calls = evaluate_tiltfile()  # an unknown builtin is an evaluation error
    assert calls.named("k8s_yaml")


def test_every_named_path_exists(tilt: TiltCalls) -> None:
    args, kwargs = image_build(tilt)
    paths = [args[1], kwargs["dockerfile"]]
    for step in steps(kwargs, "sync"):
        paths.append(step["args"][0])
    for step in steps(kwargs, "fall_back_on"):
        paths.extend(step["args"][0])
    for args_, _ in tilt.named("kustomize"):
        paths.append(args_[0])
    missing = [p for p in paths if not local(p).exists()]
    assert not missing, f"paths named in the Tiltfile that do not exist: {missing}"
    assert local(args[1]) == REPO, "the build context is the repository root"


def test_image_build_matches_the_dockerfile(tilt: TiltCalls) -> None:
    args, kwargs = image_build(tilt)
    assert args[0] == "tasker"
    runtime = stages()[-1]
    entrypoint = exec_form(next(rest for kw, rest in runtime if kw == "ENTRYPOINT"))
    assert kwargs["entrypoint"] == entrypoint
    declared = {rest.split("=", 1)[0] for kw, rest in runtime if kw == "ARG"}
    assert set(kwargs.get("build_args", {})) <= declared
    workdir = next(rest for kw, rest in reversed(runtime) if kw == "WORKDIR")
    restart_file = kwargs["restart_file"]
    assert restart_file.startswith(workdir.rstrip("/") + "/"), (
        "the restart file must live where the non-root user may write in the dev build"
    )


def test_live_update_syncs_python_sources(tilt: TiltCalls) -> None:
    _args, kwargs = image_build(tilt)
    syncs = {local(s["args"][0]): s["args"][1] for s in steps(kwargs, "sync")}
    client = "clients/python/tasker_client"
    assert syncs == {REPO / "shared": "/app/shared", REPO / "services": "/app/services",
                     REPO / client: f"/app/{client}"}
    fallbacks = {local(p) for s in steps(kwargs, "fall_back_on") for p in s["args"][0]}
    assert REPO / "pyproject.toml" in fallbacks
    assert REPO / "clients" / "python" / "pyproject.toml" in fallbacks
    assert REPO / "deploy" / "requirements.lock" in fallbacks


def test_k8s_resources_match_dev_workloads(
    tilt: TiltCalls, rendered: Callable[[str], Rendered]
) -> None:
    dev = rendered("dev")
    deployments = {d["metadata"]["name"] for d in dev.of_kind("Deployment")}
    workloads = deployments | {s["metadata"]["name"] for s in dev.of_kind("StatefulSet")}
    declared = resources(tilt)
    assert set(declared) <= workloads, f"unknown workloads: {set(declared) - workloads}"
    assert deployments <= set(declared), "every Deployment gets a grouped k8s_resource"
    for name, kwargs in declared.items():
        assert kwargs.get("labels"), f"{name} has no labels (UI grouping)"
        for dep in kwargs.get("resource_deps", []):
            assert dep in declared, f"{name} depends on unknown resource {dep}"
    (args, kwargs), *_ = tilt.named("kustomize")
    assert local(args[0]) == REPO / "deploy" / "k8s" / "overlays" / "dev"


def _forwards(kwargs: dict[str, Any]) -> set[tuple[int, int]]:
    out = set()
    for forward in kwargs.get("port_forwards", []):
        local_port, *rest = forward["args"]
        out.add((local_port, rest[0] if rest else local_port))
    return out


def test_port_forwards_match_the_code(tilt: TiltCalls) -> None:
    declared = resources(tilt)
    gateway = _forwards(declared["tasker-gateway"])
    assert (HEALTH_PORTS["gateway"], HEALTH_PORTS["gateway"]) in gateway
    assert (GATEWAY_GRPC_PORT, GATEWAY_GRPC_PORT) in gateway
    for service in SERVICE_NAMES:
        port = HEALTH_PORTS[service]
        assert any(remote == port for _, remote in _forwards(declared[f"tasker-{service}"]))


def demo_resource(tilt: TiltCalls) -> tuple[str, dict[str, Any]]:
    demos = tilt.named("local_resource")
    assert len(demos) == 1
    args, kwargs = demos[0]
    return args[0], kwargs


def demo_argv(tilt: TiltCalls) -> list[str]:
    _name, kwargs = demo_resource(tilt)
    cmd = kwargs["cmd"]
    return shlex.split(cmd) if isinstance(cmd, str) else list(cmd)


def test_demo_runs_on_demand_against_the_forwarded_gateway(tilt: TiltCalls) -> None:
    name, kwargs = demo_resource(tilt)
    assert "demo" in name
    assert kwargs["trigger_mode"] == "TRIGGER_MODE_MANUAL"
    assert kwargs["auto_init"] is False
    argv = demo_argv(tilt)
    assert argv[:2] == ["tasker", "demo"]
    assert f"localhost:{GATEWAY_GRPC_PORT}" in argv
    assert set(kwargs["resource_deps"]) == {f"tasker-{s}" for s in SERVICE_NAMES}


@pytest.mark.parametrize("builtin", ["docker_build_with_restart", "k8s_yaml", "local_resource"])
def test_tiltfile_declares(tilt: TiltCalls, builtin: str) -> None:
    assert tilt.named(builtin)
