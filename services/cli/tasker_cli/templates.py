"""The latest registered version of a template, for `task create` without `--version`."""

from __future__ import annotations

import re

from tasker_client import SyncTaskerClient
from tasker_client.errors import NotFoundError

# The server's namespace when a request names none (SPEC 1.4 TaskRequest).
DEFAULT_NAMESPACE = "default"


def version_key(version: str) -> tuple[tuple[int, int | str], ...]:
    """A sort key ordering versions the semantic-versioning way: numeric parts as numbers,
    a release after its pre-releases (1.0.0-rc.1 < 1.0.0), build metadata ignored."""
    core, _, pre = version.split("+", 1)[0].partition("-")
    parts: list[tuple[int, int | str]] = [_part(p) for p in re.split(r"[.]", core)]
    # (1, ...) for a release sorts after (0, ...) for any pre-release of the same core.
    parts.append((0, 0) if pre else (1, 0))
    parts.extend(_part(p) for p in pre.split(".") if pre)
    return tuple(parts)


def _part(text: str) -> tuple[int, int | str]:
    return (1, int(text)) if text.isdigit() else (0, text)


def latest_version(client: SyncTaskerClient, name: str, namespace: str) -> str:
    """The highest release (else pre-release) version of `namespace/name` the gateway knows
    (namespace "" is the server default); NotFoundError naming where else the name exists
    when it has none."""
    space = namespace or DEFAULT_NAMESPACE
    catalog = client.list_templates()
    versions = [str(t.version) for t in catalog.templates
                if t.name == name and t.namespace == space]
    releases = [v for v in versions if "-" not in v.split("+", 1)[0]]
    if versions:  # pre-releases only when there is no release
        return max(releases or versions, key=version_key)
    elsewhere = sorted({t.namespace for t in catalog.templates if t.name == name})
    hint = f"; it is in {', '.join(elsewhere)}: pass --namespace" if elsewhere else ""
    raise NotFoundError(f"no template {name!r} is registered in namespace {space!r}{hint}")
