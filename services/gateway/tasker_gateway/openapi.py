"""The OpenAPI 3.1 document of the REST API, generated from the route table and the pydantic
models the routes validate and return (so the document cannot drift from the code)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from tasker_gateway.models.common import ErrorBody
from tasker_gateway.models.tasks import NAMESPACE_PATTERN, TEXT_PATTERN
from tasker_gateway.rest.spec import JSON, Route

REF = "#/components/schemas/{model}"
EVENT_STREAM = "text/event-stream"
REQUEST_ID_HEADER = "X-Request-Id"

_PATH_SCHEMAS: dict[str, dict[str, Any]] = {
    "task_uuid": {"type": "string", "format": "uuid"},
    "step_uuid": {"type": "string", "format": "uuid"},
    "dlq_entry_uuid": {"type": "string", "format": "uuid"},
    "request_id": {"type": "string", "pattern": r"^[A-Za-z0-9._:\-]{1,128}$"},
    "namespace": {"type": "string", "pattern": NAMESPACE_PATTERN},
    "name": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": TEXT_PATTERN},
    "version": {"type": "string", "minLength": 1, "maxLength": 50, "pattern": TEXT_PATTERN},
}

_ERROR_TEXT = {
    400: "Invalid request (path, query or body), or an action a finished task cannot take",
    401: "Missing or invalid credentials",
    403: "The credentials lack the required permission",
    404: "Not found",
    408: "The request took longer than the gateway's request timeout",
    409: "Conflict (duplicate task identity, or the state does not allow the action)",
    413: "Request body too large",
    422: "Ingestion refused the request (e.g. the context fails the template's schema)",
    503: "Unavailable: backpressure, draining, or the database is down (see Retry-After)",
    504: "The database did not answer in time",
}


def _links(pointer: str, fields: dict[str, str], targets: tuple[str, ...]
           ) -> dict[str, Any]:
    params = {name: f"$response.body#{pointer}{field}" for name, field in fields.items()}
    return {target: {"operationId": target, "parameters": params} for target in targets}


_TASK_READS = ("get_task", "get_task_summary", "get_task_context", "list_steps",
               "get_dlq_entry_by_task", "cancel_task")
_STEP_READS = ("get_step", "get_step_audit", "resolve_step")
# Where one response names resources other operations take (stateful testing, clients).
LINKS: dict[tuple[str, int], dict[str, Any]] = {
    ("create_task", 201): _links("/", {"task_uuid": "task_uuid"}, _TASK_READS),
    ("get_task", 200): _links("/", {"task_uuid": "task_uuid"}, _TASK_READS),
    ("list_steps", 200): _links("/0/", {"task_uuid": "task_uuid", "step_uuid": "step_uuid"},
                                _STEP_READS),
    ("list_templates", 200): _links("/templates/0/", {"namespace": "namespace", "name": "name",
                                                      "version": "version"}, ("get_template",)),
    ("list_dlq_entries", 200): _links("/0/", {"dlq_entry_uuid": "dlq_entry_uuid"},
                                      ("update_dlq_entry",)),
}


def _strip_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A query parameter cannot be null: drop the null branch of `X | None`."""
    options = schema.get("anyOf")
    if isinstance(options, list):
        rest = [o for o in options if o != {"type": "null"}]
        if len(rest) == 1:
            merged = {k: v for k, v in schema.items() if k != "anyOf"}
            merged.update(rest[0])
            if merged.get("default", 0) is None:
                del merged["default"]
            return merged
    return schema


def _models(routes: Sequence[Route]) -> list[tuple[type[BaseModel], JsonSchemaMode]]:
    wanted: dict[tuple[type[BaseModel], JsonSchemaMode], None] = {
        (ErrorBody, "serialization"): None}
    for route in routes:
        for model in route.responses.values():
            if isinstance(model, type) and issubclass(model, BaseModel):
                wanted[(model, "serialization")] = None
        if route.query is not None:
            wanted[(route.query, "validation")] = None
        body = route.body
        if isinstance(body, type) and issubclass(body, BaseModel):
            wanted[(body, "validation")] = None
    return list(wanted)


def _headers(status: int) -> dict[str, Any]:
    headers: dict[str, Any] = {REQUEST_ID_HEADER: {
        "description": "The request's id (echoed when the client sent a valid one)",
        "required": True, "schema": {"type": "string"}}}
    if status == 503:
        headers["Retry-After"] = {"description": "Seconds to wait before retrying",
                                  "required": False, "schema": {"type": "integer"}}
    return headers


def _event(data: dict[str, Any]) -> dict[str, Any]:
    """One server-sent event (as parsed: event, id, data) whose data is JSON of `data`."""
    return {"type": "object", "required": ["data"], "properties": {
        "event": {"type": "string"}, "id": {"type": "string"},
        "data": {"type": "string", "contentMediaType": JSON, "contentSchema": data}}}


def _error_statuses(route: Route) -> list[int]:
    statuses = set(route.errors)
    if route.permission is not None:
        statuses |= {401, 403, 408, 503, 504}
    if route.query is not None or route.body is not None or route.path_params:
        statuses.add(400)
    if route.path_params:
        statuses.add(404)
    return sorted(s for s in statuses if s not in route.responses)


def _operation(route: Route, refs: dict[Any, dict[str, Any]], defs: dict[str, Any]
               ) -> dict[str, Any]:
    op: dict[str, Any] = {"operationId": route.name, "summary": route.summary,
                          "tags": [route.tag], "responses": {}}
    params: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": _PATH_SCHEMAS[name]}
        for name in route.path_params]
    if route.query is not None:
        schema = defs[route.query.__name__]
        required = set(schema.get("required", []))
        for name, prop in schema.get("properties", {}).items():
            param = {"name": name, "in": "query", "required": name in required,
                     "schema": _strip_null(dict(prop))}
            if "description" in prop:
                param["description"] = prop["description"]
            params.append(param)
    if params:
        op["parameters"] = params
    body = route.body
    if body is not None:
        op["requestBody"] = {"required": True, "content": {
            JSON: {"schema": refs[(body, "validation")]}}}
    for status, model in sorted(route.responses.items()):
        response: dict[str, Any] = {"description": "OK" if status < 300 else _ERROR_TEXT.get(
            status, "Error"), "headers": _headers(status)}
        if isinstance(model, str):
            response["content"] = {model: {"schema": {"type": "string"}}}
        elif model is not None:
            schema = refs[(model, "serialization")]
            if route.content_type == EVENT_STREAM:
                schema = _event(schema)
            response["content"] = {route.content_type: {"schema": schema}}
        links = LINKS.get((route.name, status))
        if links:
            response["links"] = links
        op["responses"][str(status)] = response
    for status in _error_statuses(route):
        op["responses"][str(status)] = {
            "description": _ERROR_TEXT[status], "headers": _headers(status),
            "content": {JSON: {"schema": refs[(ErrorBody, "serialization")]}}}
    if route.permission is None:
        op["security"] = []
    else:
        op["security"] = [{"bearer_auth": []}, {"api_key_auth": []}]
        op["x-required-permission"] = route.permission
    return op


def build_document(routes: Sequence[Route], *, version: str, api_key_header: str = "x-api-key",
                   servers: Sequence[str] = ()) -> dict[str, Any]:
    """The OpenAPI 3.1 document for `routes`."""
    refs, top = models_json_schema(_models(routes), ref_template=REF)
    defs: dict[str, Any] = top.get("$defs", {})
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route, refs, defs)
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": "Tasker orchestration API", "version": version,
                 "description": "Tasks, steps, templates, analytics, DLQ and health of a"
                                " Tasker deployment. The /v1 bodies are tasker-core's REST"
                                " API types (field names, JSON types, date-time spellings);"
                                " fields described as 'Tasker' are extras. Errors share one"
                                " envelope: {error: {code, message, request_id}}."},
        "paths": paths,
        "components": {
            "schemas": defs,
            "securitySchemes": {
                "bearer_auth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "api_key_auth": {"type": "apiKey", "in": "header", "name": api_key_header},
            },
        },
    }
    if servers:
        document["servers"] = [{"url": url} for url in servers]
    return document


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=False) + "\n"
