"""The REST route table's types: a route's contract (used to register it and to describe it
in the OpenAPI document), the request a handler receives and the reply it returns."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from tasker_gateway.auth import Principal
from tasker_gateway.context import GatewayContext

JSON = "application/json"


@dataclass(frozen=True, kw_only=True, slots=True)
class RestRequest:
    ctx: GatewayContext
    path: Mapping[str, str]
    query: Any  # an instance of the route's query model (or None)
    body: Any  # the validated body (or None)
    principal: Principal
    request_id: str


@dataclass(frozen=True, kw_only=True, slots=True)
class Reply:
    status: int
    body: BaseModel | str | bytes | AsyncIterator[bytes]  # an iterator: a stream
    headers: Mapping[str, str] = field(default_factory=dict)
    content_type: str = JSON


Handler = Callable[[RestRequest], Awaitable[Reply]]


@dataclass(frozen=True, kw_only=True, slots=True)
class Route:
    """One operation: how it is served and how the OpenAPI document describes it."""

    method: str
    path: str  # OpenAPI template, e.g. /v1/tasks/{task_uuid}
    name: str  # operationId and Quart endpoint
    handler: Handler
    summary: str
    tag: str
    permission: str | None  # None: public
    query: type[BaseModel] | None = None
    body: type[BaseModel] | None = None  # validated from the JSON body
    responses: Mapping[int, Any] = field(default_factory=dict)  # status -> model (or None)
    errors: tuple[int, ...] = ()
    content_type: str = JSON
    uuid_params: tuple[str, ...] = ()

    @property
    def rule(self) -> str:
        """The Quart URL rule for `path`."""
        return self.path.replace("{", "<").replace("}", ">")

    @property
    def path_params(self) -> list[str]:
        return [part[1:-1] for part in self.path.split("/") if part.startswith("{")]
