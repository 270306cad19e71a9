"""The dashboard's routes on the REST app: the page and its static files (public: they hold
no data), and JSON reads plus the task event stream under /ui/api, each behind the API's
own authentication and permissions. Operator actions go through the /v1 API itself."""

from __future__ import annotations

import html
from collections.abc import Awaitable, Callable
from datetime import datetime
from importlib import resources
from typing import Any
from uuid import UUID

import pydantic
import trio
from pydantic import BaseModel, ConfigDict, Field
from quart import Response, g, redirect, request
from quart_trio import QuartTrio

from tasker_gateway import permissions as P
from tasker_gateway.auth import Principal
from tasker_gateway.context import GatewayContext
from tasker_gateway.errors import classify
from tasker_gateway.models.common import ErrorBody, ErrorDetail, TaskState
from tasker_gateway.models.tasks import NAMESPACE_PATTERN
from tasker_gateway.ui import queries
from tasker_gateway.ui.stream import LIFETIME_SECONDS, task_events, to_json
from tasker_gateway.usecases.inputs import describe, parse_uuid
from tasker_shared.errors import NotFoundError, Unavailable

STATIC = ("index.html", "app.js", "graph.js", "ops.js", "style.css")
_TYPES = {"html": "text/html; charset=utf-8", "js": "text/javascript; charset=utf-8",
          "css": "text/css; charset=utf-8"}
# Scripts and styles come from this origin only (no inline code, no CDN): data shown on the
# page cannot run as code even if it holds markup.
SECURITY_HEADERS = {
    "Content-Security-Policy": ("default-src 'none'; script-src 'self'; style-src 'self';"
                                " img-src 'self' data:; connect-src 'self';"
                                " base-uri 'none'; form-action 'self'; frame-ancestors 'none'"),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


class TaskListQuery(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    namespace: str | None = Field(None, pattern=NAMESPACE_PATTERN)
    name: str | None = Field(None, min_length=1, max_length=255,
                             pattern=r"^[^\x00-\x1f\x7f]+$")
    state: TaskState | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    correlation_id: UUID | None = None
    before: UUID | None = None
    limit: int = Field(50, ge=1, le=200)

    def filters(self) -> queries.TaskFilters:
        return queries.TaskFilters(
            namespace=self.namespace, name=self.name,
            state=self.state.value if self.state else None, created_from=self.created_from,
            created_to=self.created_to, correlation_id=self.correlation_id)


class OperationsQuery(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    minutes: int = Field(60, ge=5, le=24 * 60)


def _query(model: type[BaseModel]) -> Any:
    args = {k: v for k, v in request.args.to_dict().items() if v != ""}
    try:
        return model.model_validate(args)
    except pydantic.ValidationError as exc:
        raise describe(exc, where="query") from None


def _json(value: Any, status: int = 200) -> Response:
    return Response(to_json(value), status=status, content_type="application/json")


def _error(exc: BaseException) -> Response:
    info = classify(exc)
    body = ErrorBody(error=ErrorDetail(code=info.code, message=info.message,
                                       request_id=g.get("request_id")))
    response = Response(body.model_dump_json(), status=info.http_status,
                        content_type="application/json")
    if info.retry_after is not None:
        response.headers["Retry-After"] = str(info.retry_after)
    return response


def _admit(ctx: GatewayContext, permission: str | None) -> Principal:
    if not ctx.accepting():
        raise Unavailable(f"the gateway is {ctx.runtime.state}; retry shortly", retry_after=5)
    principal = ctx.auth.authenticate(request.headers)
    if permission is not None:
        ctx.auth.authorize(principal, permission)
    return principal


View = Callable[..., Awaitable[Response]]


def _guarded(ctx: GatewayContext, permission: str | None,
             handler: Callable[..., Awaitable[Response]]) -> View:
    timeout = ctx.settings.gateway.request_timeout_seconds

    async def view(**path: str) -> Response:
        try:
            with trio.fail_after(timeout):
                g.principal = principal = _admit(ctx, permission)  # also for the access log
                return await handler(principal, **path)
        except trio.TooSlowError:
            return _error(Unavailable(f"no answer within {timeout}s", retry_after=1))
        except Exception as exc:  # every failure answers in the API's error envelope
            return _error(exc)

    return view


def _static(name: str, api_key_header: str) -> Response:
    data = resources.files("tasker_gateway.ui").joinpath("static", name).read_bytes()
    if name == "index.html":
        data = data.replace(b"{{API_KEY_HEADER}}", html.escape(api_key_header).encode())
    response = Response(data, content_type=_TYPES[name.rsplit(".", 1)[1]])
    response.headers.update(SECURITY_HEADERS)
    return response


def register(app: QuartTrio, ctx: GatewayContext) -> None:
    """Adds the /ui routes to `app`."""
    stopping = trio.Event()  # set when the app's serving nursery ends (drain or cancel)

    @app.before_serving
    async def watch_serving() -> None:
        async def watch() -> None:
            try:
                await trio.sleep_forever()
            finally:
                stopping.set()

        app.nursery.start_soon(watch)

    async def page() -> Response:
        return _static("index.html", ctx.auth.api_key_header)

    async def to_page() -> Any:
        return redirect("/ui/", code=308)

    async def static_file(name: str) -> Response:
        if name not in STATIC:
            return _error(NotFoundError(f"no file {name} in the dashboard"))
        return _static(name, ctx.auth.api_key_header)

    async def session(principal: Principal) -> Response:
        return _json({"auth_enabled": ctx.auth.enabled, "subject": principal.subject,
                      "method": principal.method,
                      "permissions": sorted(principal.permissions)
                      if not principal.unrestricted else ["*"],
                      "api_key_header": ctx.auth.api_key_header})

    async def tasks(principal: Principal) -> Response:
        q: TaskListQuery = _query(TaskListQuery)
        return _json(await ctx.db.run_autocommit(queries.task_page, q.filters(), q.before,
                                                 q.limit))

    async def counts(principal: Principal) -> Response:
        q: TaskListQuery = _query(TaskListQuery)
        return _json(await ctx.db.run_autocommit(queries.state_counts, q.filters()))

    async def graph(principal: Principal, task_uuid: str) -> Response:
        return _json(await ctx.db.run_autocommit(
            queries.task_graph, parse_uuid(task_uuid, "task_uuid"), ctx.settings.staleness))

    async def step(principal: Principal, task_uuid: str, step_uuid: str) -> Response:
        return _json(await ctx.db.run_autocommit(
            queries.step_detail, parse_uuid(task_uuid, "task_uuid"),
            parse_uuid(step_uuid, "step_uuid")))

    async def operations(principal: Principal) -> Response:
        q: OperationsQuery = _query(OperationsQuery)
        return _json(await ctx.db.run_autocommit(queries.operations, q.minutes))

    async def events(principal: Principal, task_uuid: str) -> Response:
        stream = task_events(ctx, parse_uuid(task_uuid, "task_uuid"), stopping)
        first = await stream.__anext__()  # refusals (too many streams) answer as errors

        async def body() -> Any:
            yield first
            async for chunk in stream:
                yield chunk

        response = Response(body(), content_type="text/event-stream")
        response.headers["Cache-Control"] = "no-store"
        response.headers["X-Accel-Buffering"] = "no"
        response.timeout = LIFETIME_SECONDS + 10
        return response

    app.add_url_rule("/ui", "ui_root", to_page, methods=["GET"])
    app.add_url_rule("/ui/", "ui_page", page, methods=["GET"])
    app.add_url_rule("/ui/static/<name>", "ui_static", static_file, methods=["GET"])
    api: list[tuple[str, str, str | None, Callable[..., Awaitable[Response]]]] = [
        ("/ui/api/session", "ui_session", None, session),
        ("/ui/api/tasks", "ui_tasks", P.TASKS_LIST, tasks),
        ("/ui/api/task-counts", "ui_task_counts", P.TASKS_LIST, counts),
        ("/ui/api/tasks/<task_uuid>", "ui_task", P.TASKS_READ, graph),
        ("/ui/api/tasks/<task_uuid>/events", "ui_task_events", P.TASKS_READ, events),
        ("/ui/api/tasks/<task_uuid>/steps/<step_uuid>", "ui_step", P.STEPS_READ, step),
        ("/ui/api/operations", "ui_operations", P.ANALYTICS_READ, operations),
    ]
    for rule, name, permission, handler in api:
        app.add_url_rule(rule, name, _guarded(ctx, permission, handler), methods=["GET"])
