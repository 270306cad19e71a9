"""Helpers of the offline deployment checks: render overlays, evaluate the Tiltfile."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
K8S = DEPLOY / "k8s"
OVERLAYS = ("dev", "prod")
TILTFILE = REPO / "tilt" / "Tiltfile"
DOCKERFILE = DEPLOY / "Dockerfile"
IMAGE = "tasker"


def venv_tool(name: str) -> str | None:
    """A console script next to this interpreter (the project venv), else on PATH."""
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    return shutil.which(name)


def load_script(path: Path, name: str) -> ModuleType:
    """Import a standalone script under deploy/ as a module."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- Dockerfile ---------------------------------------------------------------------------


def instructions(path: Path = DOCKERFILE) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    joined: list[str] = []
    pending = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        joined.append(pending + line)
        pending = ""
    result = []
    for line in joined:
        keyword, _, rest = line.partition(" ")
        result.append((keyword.upper(), rest.strip()))
    return result


def stages() -> list[list[tuple[str, str]]]:
    """The instructions of each build stage, FROM first."""
    out: list[list[tuple[str, str]]] = []
    for keyword, rest in instructions():
        if keyword == "FROM":
            out.append([])
        if out:
            out[-1].append((keyword, rest))
    return out


def exec_form(args: str) -> list[str]:
    value = json.loads(args)
    assert isinstance(value, list), f"not exec form: {args}"
    return value


# --- rendered manifests -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rendered:
    overlay: str
    text: str
    objects: list[dict[str, Any]]

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [obj for obj in self.objects if obj["kind"] == kind]

    def get(self, kind: str, name: str) -> dict[str, Any]:
        for obj in self.of_kind(kind):
            if obj["metadata"]["name"] == name:
                return obj
        raise AssertionError(f"{self.overlay}: no {kind} named {name}")

    def generated(self, kind: str, base_name: str) -> dict[str, Any]:
        """A generator output (ConfigMap/Secret), whose name carries a hash suffix."""
        for obj in self.of_kind(kind):
            name = obj["metadata"]["name"]
            if name == base_name or name.rsplit("-", 1)[0] == base_name:
                return obj
        raise AssertionError(f"{self.overlay}: no {kind} generated from {base_name}")

    def pod_specs(self) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
        """(workload, pod spec) for every Deployment and StatefulSet."""
        for obj in self.objects:
            if obj["kind"] in ("Deployment", "StatefulSet"):
                yield obj, obj["spec"]["template"]["spec"]

    def tasker_containers(self) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
        """(workload, container) for every container, init containers included, of our image."""
        for workload, pod in self.pod_specs():
            for container in pod.get("initContainers", []) + pod["containers"]:
                if image_name(container["image"]) == IMAGE:
                    yield workload, container


def image_name(image: str) -> str:
    """Last path segment without tag: registry.example.com/tasker:0.1.0 -> tasker."""
    return image.rsplit("/", 1)[-1].split(":", 1)[0].split("@", 1)[0]


def render(overlay: str) -> Rendered:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed: cannot render the kustomize overlays")
    proc = subprocess.run(
        [kubectl, "kustomize", str(K8S / "overlays" / overlay)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, f"kubectl kustomize overlays/{overlay} failed:\n{proc.stderr}"
    objects = [doc for doc in yaml.safe_load_all(proc.stdout) if doc]
    return Rendered(overlay=overlay, text=proc.stdout, objects=objects)


# --- Tiltfile evaluated with recording stand-ins for Tilt's builtins -----------------------


@dataclass(slots=True)
class TiltCalls:
    calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = field(default_factory=list)

    def named(self, builtin: str) -> list[tuple[tuple[Any, ...], dict[str, Any]]]:
        return [(args, kwargs) for name, args, kwargs in self.calls if name == builtin]


# Builtins whose result is a value other calls take (live_update steps, port forwards...).
_VALUE_BUILTINS = ("sync", "run", "fall_back_on", "port_forward", "link", "kustomize")
_ACTION_BUILTINS = ("docker_build", "k8s_yaml", "k8s_resource", "local_resource")
# What `load('ext://restart_process', ...)` provides.
_EXTENSIONS = {"ext://restart_process": ("docker_build_with_restart",)}


def evaluate_tiltfile(path: Path = TILTFILE) -> TiltCalls:
    starlark = pytest.importorskip("starlark", reason="starlark-pyo3 is not installed")
    record = TiltCalls()

    def stub(name: str) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            record.calls.append((name, args, kwargs))
            if name in _VALUE_BUILTINS:
                return {"builtin": name, "args": list(args), "kwargs": kwargs}
            return None

        return call

    def loader(module_id: str) -> Any:
        if module_id not in _EXTENSIONS:
            raise AssertionError(f"Tiltfile loads an unknown module: {module_id}")
        module = starlark.Module()
        for symbol in _EXTENSIONS[module_id]:
            module.add_callable(symbol, stub(symbol))
        return module.freeze()

    dialect = starlark.Dialect.extended()
    dialect.enable_top_level_stmt = True
    ast = starlark.parse(path.name, path.read_text(encoding="utf-8"), dialect)
    module = starlark.Module()
    for name in _VALUE_BUILTINS + _ACTION_BUILTINS:
        module.add_callable(name, stub(name))
    module["TRIGGER_MODE_AUTO"] = "TRIGGER_MODE_AUTO"
    module["TRIGGER_MODE_MANUAL"] = "TRIGGER_MODE_MANUAL"
    starlark.eval(module, ast, starlark.Globals.standard(), starlark.FileLoader(loader))
    return record
