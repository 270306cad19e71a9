"""`tasker config reference|validate`: every settings key documented; check a TOML file."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from pydantic import BaseModel

from tasker_cli.catalog import command_help
from tasker_shared.errors import ConfigError
from tasker_shared.runtime.settings import Settings, load_settings


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    config = subparsers.add_parser("config", help=command_help("config"))
    sub = config.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    ref = sub.add_parser("reference", help="print every settings key with its default")
    ref.set_defaults(func=_reference)
    val = sub.add_parser("validate", help="validate a TOML settings file (plus environment)")
    val.add_argument("path", help="the TOML file")
    val.set_defaults(func=_validate)


def reference_rows(model: type[BaseModel] = Settings, prefix: str = "") -> list[tuple[str, ...]]:
    """(toml key, environment variable, type, default, description) for every leaf key."""
    rows: list[tuple[str, ...]] = []
    for name, field in model.model_fields.items():
        key = f"{prefix}{name}"
        annotation: Any = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            rows.extend(reference_rows(annotation, f"{key}."))
            continue
        default = field.get_default(call_default_factory=True)
        env = "TASKER_" + key.upper().replace(".", "__")
        type_name = getattr(annotation, "__name__", str(annotation)).replace("typing.", "")
        rows.append((key, env, type_name, repr(default), field.description or ""))
    return rows


def _reference(args: argparse.Namespace) -> int:
    print("| key | environment variable | type | default | description |")
    print("|---|---|---|---|---|")
    for row in reference_rows():
        print("| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |")
    return 0


def _validate(args: argparse.Namespace) -> int:
    try:
        load_settings(config_path=args.path)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"{args.path}: valid")
    return 0
