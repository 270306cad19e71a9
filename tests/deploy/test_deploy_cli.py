"""Every command the deployment runs is one the `tasker` CLI accepts."""

from __future__ import annotations

import argparse
import importlib.util
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from .deploy_support import (
    OVERLAYS,
    REPO,
    Rendered,
    evaluate_tiltfile,
    exec_form,
    stages,
)


def deployment_commands(rendered: Callable[[str], Rendered]) -> dict[str, list[str]]:
    """Where -> argv after `tasker`, for every container of the image in every overlay."""
    commands = {}
    for name in OVERLAYS:
        for workload, container in rendered(name).tasker_containers():
            commands[f"{name}:{workload['metadata']['name']}/{container['name']}"] = container[
                "args"
            ]
    runtime = stages()[-1]
    commands["Dockerfile CMD"] = exec_form(next(rest for kw, rest in runtime if kw == "CMD"))
    demo_args, demo_kwargs = evaluate_tiltfile().named("local_resource")[0]
    argv = demo_kwargs["cmd"].split()
    assert argv[0] == "tasker", "the Tilt demo resource runs the tasker CLI"
    commands[f"Tiltfile local_resource {demo_args[0]}"] = argv[1:]
    return commands


def test_manifest_commands_parse(rendered: Callable[[str], Rendered]) -> None:
    cli = pytest.importorskip(
        "tasker_cli.main", reason="tasker_cli.main (the CLI) is not written yet"
    )
    parser = cli.build_parser()
    assert isinstance(parser, argparse.ArgumentParser)
    rejected = {}
    for where, argv in deployment_commands(rendered).items():
        try:
            parser.parse_args(argv)
        except SystemExit:
            rejected[where] = argv
    assert not rejected, f"commands the CLI rejects: {rejected}"


def test_worker_handlers_and_templates_exist(rendered: Callable[[str], Rendered]) -> None:
    """The worker's --handlers module is importable and its --templates path ships in /app."""
    for name in OVERLAYS:
        deployment = rendered(name).get("Deployment", "tasker-worker")
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        argv = container["args"]
        handlers = argv[argv.index("--handlers") + 1]
        templates = argv[argv.index("--templates") + 1]
        assert templates.startswith("/app/"), "templates must come from the image's /app"
        local_templates = REPO / Path(templates).relative_to("/app")
        if not _spec(handlers):
            pytest.skip(f"worker handlers module {handlers} does not exist yet")
        if not local_templates.exists():
            pytest.skip(f"worker templates {local_templates} do not exist yet")
        files = sorted(local_templates.glob("*.y*ml")) if local_templates.is_dir() else [local_templates]
        assert files, f"no templates in {local_templates}"
        namespace = argv[argv.index("--namespace") + 1]
        for path in files:
            template = yaml.safe_load(path.read_text(encoding="utf-8"))
            assert template.get("namespace_name", namespace) == namespace, (
                f"{path.name} is in namespace {template.get('namespace_name')}, "
                f"the worker listens on {namespace}"
            )


def _spec(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False
