"""Sample templates and handlers: the demo's workflows, also used by tests and benchmarks."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def templates_dir() -> Path:
    """The folder holding the sample template YAML files."""
    return Path(str(files("tasker_worker.examples").joinpath("templates")))
