"""The worker's templates: loaded from its template path, registered at start, and
fetched from the database for templates another process registered."""

from __future__ import annotations

from uuid import UUID

from tasker_shared.db.database import Database
from tasker_shared.domain.template import TaskTemplate
from tasker_shared.store.templates import TemplateCache, register_template


class WorkerTemplates:
    def __init__(self, db: Database, *, environment: str) -> None:
        self.db = db
        self.environment = environment
        self._local: dict[tuple[str, str, str], TaskTemplate] = {}
        self._cache = TemplateCache()

    async def register_all(self, templates: list[TaskTemplate]) -> None:
        for template in templates:
            await self.db.run(register_template, template)
            self._local[(template.namespace, template.name, template.version)] = (
                template.resolve_for_environment(self.environment))

    @property
    def namespaces(self) -> set[str]:
        return {key[0] for key in self._local}

    async def get(self, namespace: str, name: str, version: str,
                  named_task_uuid: UUID) -> TaskTemplate:
        local = self._local.get((namespace, name, version))
        if local is not None:
            return local
        template = await self.db.run(self._cache.by_uuid, named_task_uuid)
        return template.resolve_for_environment(self.environment)
