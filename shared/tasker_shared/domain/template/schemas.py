"""JSON Schema support: checking `input_schema` and validating a task's context against it."""

# Remote `$ref` retrieval is disabled (an empty registry), so validation never does I/O.
# Checked schemas and compiled validators are cached by the schema's canonical JSON text,
# so templates re-read from the database do not pay for compilation again.

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any, cast

from jsonschema import Draft202012Validator, exceptions, validators
from jsonschema.protocols import Validator
from referencing import Registry
from referencing.exceptions import Unresolvable

from ...errors import ValidationError

MAX_REPORTED_ERRORS = 20


def _canonical(schema: Any) -> str:
    return json.dumps(schema, sort_keys=True, separators=(",", ":"))


def check_schema(schema: Any) -> str | None:
    """None when `schema` is a valid JSON Schema, else a description of what is wrong."""
    return _check_canonical(_canonical(schema))


@lru_cache(maxsize=512)
def _check_canonical(text: str) -> str | None:
    schema = json.loads(text)
    if isinstance(schema, dict) and not isinstance(schema.get("$schema", ""), str):
        return "$schema must be a string naming a JSON Schema draft"
    cls = validators.validator_for(schema, default=Draft202012Validator)
    try:
        cls.check_schema(schema)
    except exceptions.SchemaError as exc:
        where = exc.json_path if exc.path else "$"
        return f"{exc.message} (at {where})"
    return None


@lru_cache(maxsize=512)
def _compiled(text: str) -> Validator:
    schema = json.loads(text)
    cls = validators.validator_for(schema, default=Draft202012Validator)
    validator: Validator = cls(schema, registry=Registry(), format_checker=cls.FORMAT_CHECKER)
    return validator


def validator_for_schema(schema: Any) -> Validator:
    """The compiled (cached) validator of a JSON Schema that passed `check_schema`."""
    return _compiled(_canonical(schema))


def check_context(validator: Validator, context: object, *, template_key: str) -> None:
    """Raise ValidationError naming each failing path when `context` breaks the schema of
    `validator` (the input_schema of template `template_key`)."""
    try:
        found_errors = validator.iter_errors(cast(Any, context))
        errors = sorted(found_errors, key=lambda e: [str(p) for p in e.path])
    except Unresolvable as exc:
        raise ValidationError(
            f"the input_schema of template {template_key} cannot be applied: "
            f"unresolvable reference ({exc})"
        ) from None
    if not errors:
        return
    found = [{"path": error.json_path, "message": error.message} for error in errors]
    shown = "; ".join(f"{e['path']}: {e['message']}" for e in found[:MAX_REPORTED_ERRORS])
    more = len(found) - MAX_REPORTED_ERRORS
    raise ValidationError(
        f"context does not match the input_schema of template {template_key}: {shown}"
        + (f" (and {more} more)" if more > 0 else ""),
        details={"template": template_key, "errors": found},
    )
