"""Template bodies: the registered templates and one template's detail."""

from __future__ import annotations

from typing import Any

from tasker_gateway.models.common import ApiModel, JsonObject, NonNegative


class TemplateSummaryView(ApiModel):
    namespace: str
    name: str
    version: str
    description: str | None
    step_count: NonNegative


class TemplateListView(ApiModel):
    templates: list[TemplateSummaryView]
    namespaces: list[str]


class TemplateStepView(ApiModel):
    name: str
    description: str | None
    step_type: str
    handler_callable: str
    dependencies: list[str]
    retryable: bool
    max_attempts: NonNegative
    timeout_seconds: NonNegative | None


class TemplateDetailView(ApiModel):
    namespace: str
    name: str
    version: str
    description: str | None
    steps: list[TemplateStepView]
    input_schema: Any = None
    configuration: JsonObject
