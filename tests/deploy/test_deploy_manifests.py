"""Kubernetes manifests: schema-valid, linted, and consistent with the application's settings."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, get_args, get_origin
from urllib.parse import urlsplit

import pytest
import yaml
from pydantic import BaseModel

from tasker_shared.runtime.ports import (
    GATEWAY_GRPC_PORT,
    HEALTH_LIVE_PATH,
    HEALTH_PORTS,
    HEALTH_READY_PATH,
    METRICS_PATH,
    SERVICE_NAMES,
)
from tasker_shared.runtime.settings import Settings, load_settings

from .deploy_support import DEPLOY, IMAGE, K8S, REPO, Rendered, image_name, venv_tool

# Kubernetes versions the manifests must validate against: the newest schema bundled with
# kubernetes-validate, and the oldest cluster we support (gRPC probes are GA since 1.27).
K8S_VERSIONS = (None, "1.28.0")

# Environment variables the settings loader reads besides the TASKER_<SECTION>__<KEY> fields.
SETTINGS_ALIASES = {"TASKER_DATABASE_URL", "DATABASE_URL", "TASKER_CONFIG_PATH"}


def deployment_name(service: str) -> str:
    return f"tasker-{service}"


def main_container(deployment: dict[str, Any]) -> dict[str, Any]:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    matching = [c for c in containers if image_name(c["image"]) == IMAGE]
    assert len(matching) == 1, f"{deployment['metadata']['name']}: one tasker container expected"
    return matching[0]


def service_deployments(rendered: Rendered) -> Iterator[tuple[str, dict[str, Any]]]:
    for service in SERVICE_NAMES:
        yield service, rendered.get("Deployment", deployment_name(service))


# --- rendering, schema validation and lint -------------------------------------------------


@pytest.mark.parametrize("k8s_version", K8S_VERSIONS, ids=lambda v: v or "latest")
def test_overlay_validates_strictly(
    overlay: Rendered, k8s_version: str | None, tmp_path: Path
) -> None:
    tool = venv_tool("kubernetes-validate")
    if tool is None:
        pytest.skip("kubernetes-validate is not installed")
    rendered_file = tmp_path / f"{overlay.overlay}.yaml"
    rendered_file.write_text(overlay.text, encoding="utf-8")
    command = [tool, "--strict", "--quiet"]
    if k8s_version:
        command += ["--kubernetes-version", k8s_version]
    proc = subprocess.run(
        [*command, str(rendered_file)], capture_output=True, text=True, timeout=60, check=False
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    # The CLI only warns (exit 0) when it has no schema for a kind; treat that as a failure.
    assert "WARN" not in output, output


def test_yamllint_is_clean() -> None:
    if venv_tool("yamllint") is None:
        pytest.skip("yamllint is not installed")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "yamllint",
            "--strict",
            "-f",
            "parsable",
            "-c",
            str(DEPLOY / ".yamllint.yaml"),
            str(K8S),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_each_service_has_a_deployment(overlay: Rendered) -> None:
    names = {d["metadata"]["name"] for d in overlay.of_kind("Deployment")}
    assert names == {deployment_name(s) for s in SERVICE_NAMES}
    for workload, _pod in overlay.pod_specs():
        assert workload["metadata"].get("namespace"), "overlays place everything in a namespace"


# --- probes and ports follow tasker_shared.runtime.ports -----------------------------------


def test_probes_and_ports_match_the_code(overlay: Rendered) -> None:
    for service, deployment in service_deployments(overlay):
        container = main_container(deployment)
        port = HEALTH_PORTS[service]
        ready = container["readinessProbe"]["httpGet"]
        live = container["livenessProbe"]["httpGet"]
        assert (ready["path"], ready["port"]) == (HEALTH_READY_PATH, port), service
        assert (live["path"], live["port"]) == (HEALTH_LIVE_PATH, port), service
        declared = {p["containerPort"] for p in container["ports"]}
        assert port in declared, service
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/port"] == str(port)
        assert annotations["prometheus.io/path"] == METRICS_PATH
        startup = container.get("startupProbe", {})
        if service == "gateway":
            assert GATEWAY_GRPC_PORT in declared
            assert startup["grpc"]["port"] == GATEWAY_GRPC_PORT
        else:
            assert startup["httpGet"]["port"] == port


def test_gateway_service_exposes_rest_and_grpc(overlay: Rendered) -> None:
    service = overlay.get("Service", "tasker-gateway")
    deployment = overlay.get("Deployment", "tasker-gateway")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    container_ports = {p["name"]: p["containerPort"] for p in main_container(deployment)["ports"]}
    exposed = {}
    for port in service["spec"]["ports"]:
        target = port["targetPort"]
        exposed[port["port"]] = container_ports[target] if isinstance(target, str) else target
    assert exposed == {
        HEALTH_PORTS["gateway"]: HEALTH_PORTS["gateway"],
        GATEWAY_GRPC_PORT: GATEWAY_GRPC_PORT,
    }


# --- safe rollouts --------------------------------------------------------------------------


def _shutdown_timeout(overlay: Rendered) -> float:
    config = overlay.generated("ConfigMap", "tasker-config")["data"]
    default = Settings.model_fields["service"].default_factory().shutdown_timeout_seconds
    return float(config.get("TASKER_SERVICE__SHUTDOWN_TIMEOUT_SECONDS", default))


def _prestop_seconds(container: dict[str, Any]) -> float:
    pre_stop = container.get("lifecycle", {}).get("preStop")
    if not pre_stop:
        return 0.0
    if "sleep" in pre_stop:
        return float(pre_stop["sleep"]["seconds"])
    command = pre_stop["exec"]["command"]
    assert command[0] == "sleep", f"unexpected preStop hook {command}"
    return float(command[1])


def test_rolling_updates_never_drop_capacity_or_work(overlay: Rendered) -> None:
    shutdown = _shutdown_timeout(overlay)
    for service, deployment in service_deployments(overlay):
        strategy = deployment["spec"]["strategy"]
        assert strategy["type"] == "RollingUpdate", service
        assert strategy["rollingUpdate"]["maxUnavailable"] == 0, service
        pod = deployment["spec"]["template"]["spec"]
        grace = pod["terminationGracePeriodSeconds"]
        needed = shutdown + _prestop_seconds(main_container(deployment))
        assert grace > needed, f"{service}: grace {grace}s <= shutdown deadline {needed}s"


def test_resources_and_security(overlay: Rendered) -> None:
    for workload, pod in overlay.pod_specs():
        name = workload["metadata"]["name"]
        security = pod["securityContext"]
        assert security["runAsNonRoot"] is True, name
        assert security.get("runAsUser", 1) != 0, name
        for container in pod.get("initContainers", []) + pod["containers"]:
            where = f"{name}/{container['name']}"
            resources = container["resources"]
            assert {"cpu", "memory"} <= resources["requests"].keys(), where
            assert {"cpu", "memory"} <= resources["limits"].keys(), where
            assert container["securityContext"]["allowPrivilegeEscalation"] is False, where
            assert container["securityContext"]["capabilities"]["drop"] == ["ALL"], where


def test_containers_use_args_not_command(overlay: Rendered) -> None:
    """The image ENTRYPOINT is `tasker`; Tilt's restart wrapper replaces `command`."""
    for workload, container in overlay.tasker_containers():
        assert "command" not in container, f"{workload['metadata']['name']}/{container['name']}"
        assert container["args"], f"{workload['metadata']['name']}/{container['name']}"


def test_migrations_run_before_every_service(overlay: Rendered) -> None:
    for service, deployment in service_deployments(overlay):
        pod = deployment["spec"]["template"]["spec"]
        migrations = [
            c for c in pod.get("initContainers", []) if c.get("args") == ["db", "migrate"]
        ]
        assert len(migrations) == 1, f"{service}: an init container must run `tasker db migrate`"
        assert migrations[0]["image"] == main_container(deployment)["image"], service


def test_database_url_comes_from_a_secret_and_settings_from_the_configmap(
    overlay: Rendered,
) -> None:
    config_name = overlay.generated("ConfigMap", "tasker-config")["metadata"]["name"]
    for workload, container in overlay.tasker_containers():
        where = f"{workload['metadata']['name']}/{container['name']}"
        env = {e["name"]: e for e in container.get("env", [])}
        url = env["TASKER_DATABASE_URL"]
        assert "value" not in url, f"{where}: database URL must not be inline"
        assert url["valueFrom"]["secretKeyRef"]["key"] == "url", where
        sources = [s["configMapRef"]["name"] for s in container["envFrom"] if "configMapRef" in s]
        assert sources == [config_name], where


# --- autoscaling, disruption budget, replicas ----------------------------------------------


def test_prod_autoscales_every_service(rendered: Callable[[str], Rendered]) -> None:
    prod = rendered("prod")
    targets = {}
    for hpa in prod.of_kind("HorizontalPodAutoscaler"):
        ref = hpa["spec"]["scaleTargetRef"]
        assert ref["kind"] == "Deployment"
        assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
        targets[ref["name"]] = hpa["spec"]["minReplicas"]
    assert set(targets) == {deployment_name(s) for s in SERVICE_NAMES}
    assert all(minimum >= 2 for minimum in targets.values()), "prod runs redundant replicas"
    for _service, deployment in service_deployments(prod):
        # A fixed replica count would fight the autoscaler on every apply.
        assert "replicas" not in deployment["spec"]


def test_prod_gateway_disruption_budget(rendered: Callable[[str], Rendered]) -> None:
    prod = rendered("prod")
    (pdb,) = prod.of_kind("PodDisruptionBudget")
    pod_labels = prod.get("Deployment", "tasker-gateway")["spec"]["template"]["metadata"]["labels"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    others = [
        d
        for d in prod.of_kind("Deployment")
        if pdb["spec"]["selector"]["matchLabels"].items()
        <= d["spec"]["template"]["metadata"]["labels"].items()
    ]
    assert len(others) == 1, "the gateway budget must select only gateway pods"


def test_dev_runs_single_replicas_without_autoscaling(rendered: Callable[[str], Rendered]) -> None:
    dev = rendered("dev")
    assert not dev.of_kind("HorizontalPodAutoscaler")
    assert not dev.of_kind("PodDisruptionBudget")
    for service, deployment in service_deployments(dev):
        assert deployment["spec"]["replicas"] == 1, service


# --- where the database comes from ---------------------------------------------------------


def test_dev_database_is_in_cluster(rendered: Callable[[str], Rendered]) -> None:
    dev = rendered("dev")
    postgres = dev.get("StatefulSet", "postgres")
    service = dev.get("Service", "postgres")
    assert service["spec"]["selector"].items() <= (
        postgres["spec"]["template"]["metadata"]["labels"].items()
    )
    secret = dev.generated("Secret", "tasker-database")
    url = urlsplit(secret["stringData"]["url"] if "stringData" in secret else _b64(secret))
    assert url.scheme in ("postgresql", "postgres")
    assert url.hostname == service["metadata"]["name"]
    assert url.port == service["spec"]["ports"][0]["port"]
    # Every reference points at the generated (hash-suffixed) Secret.
    for _workload, container in dev.tasker_containers():
        ref = {e["name"]: e for e in container["env"]}["TASKER_DATABASE_URL"]
        assert ref["valueFrom"]["secretKeyRef"]["name"] == secret["metadata"]["name"]


def _b64(secret: dict[str, Any]) -> str:
    return base64.b64decode(secret["data"]["url"]).decode()


def test_prod_database_secret_is_provided_by_the_operator(
    rendered: Callable[[str], Rendered],
) -> None:
    prod = rendered("prod")
    assert not prod.of_kind("Secret"), "prod must not ship credentials"
    assert not prod.of_kind("StatefulSet")
    for _workload, container in prod.tasker_containers():
        ref = {e["name"]: e for e in container["env"]}["TASKER_DATABASE_URL"]
        assert ref["valueFrom"]["secretKeyRef"]["name"] == "tasker-database"


# --- environment variables are real settings -----------------------------------------------


def settings_env_names(model: type[BaseModel] = Settings, prefix: str = "TASKER_") -> set[str]:
    """TASKER_<SECTION>__<KEY> for every leaf field of the settings model, nested included."""
    names: set[str] = set()
    for field_name, info in model.model_fields.items():
        env_name = prefix + field_name.upper()
        nested = _model_of(info.annotation)
        if nested is None:
            names.add(env_name)
        else:
            names.add(env_name)  # a whole section as JSON is also accepted
            names |= settings_env_names(nested, env_name + "__")
    return names


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The settings section a field holds (Optional unwrapped), or None for a leaf value."""
    candidates = get_args(annotation) if get_origin(annotation) is not list else ()
    for candidate in (annotation, *candidates):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def manifest_env(overlay: Rendered) -> dict[str, set[str]]:
    """Env var name -> where it is set, for every tasker container (ConfigMap keys included)."""
    configmaps = {c["metadata"]["name"]: c.get("data", {}) for c in overlay.of_kind("ConfigMap")}
    found: dict[str, set[str]] = {}
    for workload, container in overlay.tasker_containers():
        where = f"{workload['metadata']['name']}/{container['name']}"
        for entry in container.get("env", []):
            found.setdefault(entry["name"], set()).add(where)
        for source in container.get("envFrom", []):
            if "configMapRef" in source:
                for key in configmaps[source["configMapRef"]["name"]]:
                    found.setdefault(key, set()).add(f"{where} (ConfigMap)")
    return found


def test_settings_walk_sees_known_fields() -> None:
    names = settings_env_names()
    assert "TASKER_SERVICE__HEALTH_PORT" in names
    assert "TASKER_GATEWAY__AUTH__ENABLED" in names
    assert "TASKER_QUEUES__DEPLOYMENT_MODE" in names
    assert "TASKER_SERVICE__NO_SUCH_KEY" not in names


def test_env_var_names_are_settings_fields(overlay: Rendered) -> None:
    known = settings_env_names() | SETTINGS_ALIASES
    unknown = {
        name: sorted(where)
        for name, where in manifest_env(overlay).items()
        if (name.startswith("TASKER_") or name == "DATABASE_URL") and name not in known
    }
    assert not unknown, f"env vars that no settings field reads: {unknown}"


def test_configured_values_load(overlay: Rendered, monkeypatch: pytest.MonkeyPatch) -> None:
    """The ConfigMap's values pass the settings model's validation."""
    for name in list(os.environ):
        if name.startswith("TASKER_") or name == "DATABASE_URL":
            monkeypatch.delenv(name)
    data = overlay.generated("ConfigMap", "tasker-config")["data"]
    for name, value in data.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("TASKER_DATABASE_URL", "postgresql://u:p@db:5432/tasker")
    settings = load_settings()
    assert settings.database.url == "postgresql://u:p@db:5432/tasker"
    assert settings.service.shutdown_timeout_seconds == _shutdown_timeout(overlay)
    if "TASKER_GATEWAY__AUTH__JWT_PUBLIC_KEY_PATH" in data:
        mounts = [
            m["mountPath"]
            for m in main_container(overlay.get("Deployment", "tasker-gateway")).get(
                "volumeMounts", []
            )
        ]
        key_path = data["TASKER_GATEWAY__AUTH__JWT_PUBLIC_KEY_PATH"]
        assert any(key_path.startswith(m.rstrip("/") + "/") for m in mounts), (
            f"{key_path} is not on a volume mounted into the gateway"
        )


def test_manifest_files_are_all_used() -> None:
    """Every YAML file under deploy/k8s is a kustomization or listed by one."""
    listed: set[Path] = set()
    for kustomization in K8S.rglob("kustomization.yaml"):
        data = yaml.safe_load(kustomization.read_text(encoding="utf-8"))
        listed.add(kustomization)
        for entry in data.get("resources", []):
            listed.add((kustomization.parent / entry).resolve())
        for patch in data.get("patches", []):
            if "path" in patch:
                listed.add((kustomization.parent / patch["path"]).resolve())
    orphans = [str(p.relative_to(REPO)) for p in K8S.rglob("*.yaml") if p.resolve() not in listed]
    assert not orphans, f"manifests no kustomization uses: {orphans}"
