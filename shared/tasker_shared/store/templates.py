"""Template registration and lookup, with an in-process cache keyed by version stamp."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg.types.json import Jsonb

from tasker_shared.db.database import Conn
from tasker_shared.domain.template import TaskTemplate, template_from_json
from tasker_shared.errors import NotFoundError


@dataclass(frozen=True, kw_only=True, slots=True)
class RegisteredTemplate:
    named_task_uuid: UUID
    template: TaskTemplate
    updated_at: datetime


def register_template(conn: Conn, template: TaskTemplate) -> UUID:
    """Upsert the template by (namespace, name, version); creates its worker queue."""
    row = conn.execute(
        "SELECT tasker.register_template_v1(%s::text, %s::text, %s::text, %s::text, %s::jsonb, %s::text) AS id",
        (
            template.namespace,
            template.name,
            template.version,
            template.description,
            Jsonb(template.to_json()),
            str(template.identity_strategy),
        ),
    ).fetchone()
    assert row is not None
    return UUID(str(row["id"]))


_SELECT = """
SELECT nt.named_task_uuid, nt.configuration, nt.updated_at
  FROM tasker.named_tasks nt
  JOIN tasker.task_namespaces tn ON tn.task_namespace_uuid = nt.task_namespace_uuid
"""


class TemplateCache:
    """Parsed templates by named_task_uuid; re-read when the row's `updated_at` moves."""

    def __init__(self) -> None:
        self._by_uuid: dict[UUID, RegisteredTemplate] = {}
        self._lock = threading.Lock()

    def _parse(self, row: dict[str, Any]) -> RegisteredTemplate:
        entry = RegisteredTemplate(
            named_task_uuid=row["named_task_uuid"],
            template=template_from_json(row["configuration"]),
            updated_at=row["updated_at"],
        )
        with self._lock:
            self._by_uuid[entry.named_task_uuid] = entry
        return entry

    def by_uuid(self, conn: Conn, named_task_uuid: UUID, updated_at: datetime | None = None) -> TaskTemplate:
        return self.entry(conn, named_task_uuid, updated_at).template

    def entry(self, conn: Conn, named_task_uuid: UUID,
              updated_at: datetime | None = None) -> RegisteredTemplate:
        """The cached template unless `updated_at` (the row's stamp, read by the caller)
        says it moved; then (or when not cached) it is read again."""
        cached = self._by_uuid.get(named_task_uuid)
        if cached is not None and (updated_at is None or cached.updated_at == updated_at):
            return cached
        row = conn.execute(_SELECT + " WHERE nt.named_task_uuid = %s", (named_task_uuid,)).fetchone()
        if row is None:
            raise NotFoundError(f"task template {named_task_uuid} not found")
        return self._parse(row)

    def by_key(self, conn: Conn, namespace: str, name: str, version: str) -> RegisteredTemplate:
        """Always checks the row's version stamp (one indexed lookup) so updates are seen."""
        row = conn.execute(
            "SELECT nt.named_task_uuid, nt.updated_at FROM tasker.named_tasks nt"
            " JOIN tasker.task_namespaces tn ON tn.task_namespace_uuid = nt.task_namespace_uuid"
            " WHERE tn.name = %s AND nt.name = %s AND nt.version = %s",
            (namespace, name, version),
        ).fetchone()
        if row is None:
            raise NotFoundError(f"task template {namespace}/{name}:{version} not found")
        return self.entry(conn, row["named_task_uuid"], row["updated_at"])


def list_templates(conn: Conn, namespace: str | None = None) -> list[dict[str, Any]]:
    return conn.execute(
        "SELECT tn.name AS namespace, nt.name, nt.version, nt.description,"
        " nt.named_task_uuid, nt.created_at, nt.updated_at,"
        " jsonb_array_length(nt.configuration -> 'steps') AS step_count"
        " FROM tasker.named_tasks nt"
        " JOIN tasker.task_namespaces tn ON tn.task_namespace_uuid = nt.task_namespace_uuid"
        " WHERE %(ns)s::text IS NULL OR tn.name = %(ns)s"
        " ORDER BY tn.name, nt.name, nt.version",
        {"ns": namespace},
    ).fetchall()
