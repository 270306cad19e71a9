"""Starting the services as real processes for end-to-end tests."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tasker_cli.cluster import Cluster

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = Path(__file__).parent / "templates"


def cluster_env(*, namespaces: list[str], handlers: list[str], templates: list[str],
                **extra: Any) -> dict[str, str]:
    env = {
        "PYTHONPATH": str(ROOT),
        "TASKER_ENVIRONMENT": "test",
        "TASKER_SERVICE__LOG_LEVEL": "INFO",
        "TASKER_QUEUES__POLL_INTERVAL_MS": "200",
        "TASKER_QUEUES__VISIBILITY_TIMEOUT_SECONDS": "3",
        "TASKER_BACKOFF__BASE_SECONDS": "0.05",
        "TASKER_BACKOFF__MAX_SECONDS": "5",
        "TASKER_BACKOFF__JITTER_ENABLED": "false",
        "TASKER_READINESS__POLL_INTERVAL_SECONDS": "0.5",
        "TASKER_SERVICE__SHUTDOWN_TIMEOUT_SECONDS": "5",
        "TASKER_DATABASE__POOL_MAX": "6",
        "TASKER_WORKER__NAMESPACES": json.dumps(namespaces),
        "TASKER_WORKER__HANDLER_MODULES": json.dumps(handlers),
        "TASKER_WORKER__TEMPLATE_PATHS": json.dumps(templates),
    }
    env.update({k: str(v) for k, v in extra.items()})
    return env


def make_cluster(url: str, log_dir: Path, *, replicas: Mapping[str, int] | None = None,
                 env: Mapping[str, str]) -> Cluster:
    counts = {"ingestion": 1, "results": 1, "finalizer": 1, "worker": 1}
    counts.update(replicas or {})
    return Cluster(database_url=url, replicas=counts, env=env, log_dir=log_dir)
