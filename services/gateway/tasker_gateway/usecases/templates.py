"""Template use cases: list the registered templates, show one."""

from __future__ import annotations

from tasker_gateway.context import GatewayContext
from tasker_gateway.models.templates import (
    TemplateDetailView,
    TemplateListView,
    TemplateStepView,
    TemplateSummaryView,
)
from tasker_shared.contracts.queues import is_valid_namespace
from tasker_shared.db.database import Conn
from tasker_shared.errors import ValidationError
from tasker_shared.store.templates import TemplateCache, list_templates


def _list(conn: Conn, namespace: str | None) -> TemplateListView:
    rows = list_templates(conn, namespace)
    return TemplateListView(
        templates=[TemplateSummaryView(namespace=r["namespace"], name=r["name"],
                                       version=r["version"], description=r["description"],
                                       step_count=r["step_count"] or 0) for r in rows],
        namespaces=sorted({r["namespace"] for r in rows}))


def _check_namespace(namespace: str) -> None:
    if not is_valid_namespace(namespace):
        raise ValidationError(f"namespace: {namespace[:64]!r} must be 1 to 29 characters of"
                              " [A-Za-z0-9_]")


def _check_text(value: str, field: str, limit: int) -> None:
    if not value or len(value) > limit or not value.isprintable():
        raise ValidationError(f"{field}: {value[:64]!r} must be 1 to {limit} printable"
                              " characters")


async def templates(ctx: GatewayContext, namespace: str | None) -> TemplateListView:
    if namespace is not None:
        _check_namespace(namespace)
    return await ctx.db.run(_list, namespace)


def _detail(conn: Conn, cache: TemplateCache, namespace: str, name: str, version: str
            ) -> TemplateDetailView:
    template = cache.by_key(conn, namespace, name, version).template
    return TemplateDetailView(
        namespace=template.namespace, name=template.name, version=template.version,
        description=template.description,
        steps=[TemplateStepView(
            name=s.name, description=s.description, step_type=s.step_type.value,
            handler_callable=s.handler.callable, dependencies=list(s.dependencies),
            retryable=s.retry.retryable, max_attempts=s.retry.max_attempts,
            timeout_seconds=s.timeout_seconds) for s in template.steps],
        input_schema=template.input_schema, configuration=template.to_json())


async def template(ctx: GatewayContext, namespace: str, name: str, version: str
                   ) -> TemplateDetailView:
    _check_namespace(namespace)
    _check_text(name, "name", 255)
    _check_text(version, "version", 50)
    return await ctx.db.run(_detail, ctx.templates, namespace, name, version)
