"""The REST application (quart-trio): the route table, request ids, authentication before the
body is read, one error envelope, the OpenAPI document and its Swagger UI page; wrapped in
the access middleware (a span per request, metrics, the access log)."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import pydantic
import structlog
import trio
from grpclib.const import Status
from quart import Response, g, request
from quart_trio import QuartTrio
from werkzeug.exceptions import HTTPException

from tasker_gateway.auth import ANONYMOUS
from tasker_gateway.context import GatewayContext
from tasker_gateway.errors import ErrorInfo, classify
from tasker_gateway.models.common import ErrorBody, ErrorDetail
from tasker_gateway.openapi import build_document, render
from tasker_gateway.rest import docs, routes_ops, routes_tasks, stream
from tasker_gateway.rest.access import ACCESS, AccessMiddleware
from tasker_gateway.rest.connection import ShieldedSendConnection
from tasker_gateway.rest.spec import JSON, Reply, RestRequest, Route
from tasker_gateway.ui.web import register as register_dashboard
from tasker_gateway.usecases.inputs import describe, reject_nul
from tasker_gateway.usecases.system import VERSION
from tasker_shared.domain.limits import JsonLimitError
from tasker_shared.errors import TaskerError, Unavailable, ValidationError

log = structlog.get_logger("tasker.gateway.rest")

_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
_HTTP_CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed",
               408: "request_timeout", 413: "payload_too_large", 415: "unsupported_media_type"}
_EXPOSED = "X-Request-Id, Retry-After, Location, X-Task-Request-Id"


def all_routes(ctx: GatewayContext | None = None) -> tuple[Route, ...]:
    """Every route; `/config` only when the config endpoint is enabled (all without ctx)."""
    routes = (routes_tasks.ROUTES + stream.ROUTES + routes_ops.ROUTES
              + routes_ops.HEALTH_ROUTES)
    if ctx is not None and not ctx.settings.gateway.config_endpoint_enabled:
        routes = tuple(r for r in routes if r.name != "get_config")
    return routes


def openapi_document(api_key_header: str = "x-api-key") -> dict[str, Any]:
    """The document describing every route (the config route included)."""
    return build_document(all_routes(), version=VERSION, api_key_header=api_key_header)


def _json_details(details: dict[str, Any]) -> dict[str, Any] | None:
    if not details:
        return None
    try:
        json.dumps(details)
    except (TypeError, ValueError):
        return None
    return details


def error_response(info: ErrorInfo, *, details: dict[str, Any] | None = None) -> Response:
    body = ErrorBody(error=ErrorDetail(code=info.code, message=info.message,
                                       request_id=g.get("request_id"), details=details))
    response = Response(body.model_dump_json(), status=info.http_status, content_type=JSON)
    if info.retry_after is not None:
        response.headers["Retry-After"] = str(info.retry_after)
    if info.http_status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="tasker"'
    existing = (details or {}).get("existing_task_uuid")
    if info.http_status == 409 and isinstance(existing, str):
        response.headers["Location"] = f"/v1/tasks/{existing}"  # the duplicate's original
    return response


def failure(exc: BaseException) -> Response:
    info = classify(exc)
    if info.http_status >= 500 and info.retry_after is None:
        log.error("request_failed", action="rest", path=request.path,
                  request_id=g.get("request_id"), exc_info=exc)
    details = _json_details(exc.details) if isinstance(exc, TaskerError) else None
    return error_response(info, details=details)


async def _query(route: Route) -> Any:
    if route.query is None:
        return None
    try:
        return route.query.model_validate(request.args.to_dict())
    except pydantic.ValidationError as exc:
        raise describe(exc, where="query") from None


def _has_body() -> bool:
    return bool(request.content_length) or "transfer-encoding" in request.headers


def _too_deep(exc: pydantic.ValidationError) -> bool:
    """True when pydantic's JSON parser stopped at its nesting limit (about 200 levels: it
    never recurses without bound, so any depth is refused quickly)."""
    return any(err["type"] == "json_invalid" and "recursion limit" in err["msg"]
               for err in exc.errors(include_url=False))


async def _body(route: Route, max_depth: int) -> Any:
    """The validated body. Any body is read in full before answering: hypercorn stalls a
    keep-alive connection whose request body arrives after the response."""
    raw = await request.get_data() if route.body is not None or _has_body() else b""
    g.body_read = True
    if route.body is None:
        return None
    if not raw:
        raise ValidationError("this request needs a JSON body")
    try:
        body = route.body.model_validate_json(raw, strict=True)
    except pydantic.ValidationError as exc:
        if _too_deep(exc):
            raise JsonLimitError(
                f"body: the JSON nests too deeply; values in a request may nest at most"
                f" {max_depth} levels", details={"field": "body", "max_depth": max_depth},
            ) from None
        raise describe(exc, where="body") from None
    reject_nul(body.model_dump(mode="python"), "body")
    return body


def _render(reply: Reply) -> Response:
    body = reply.body
    data = body.model_dump_json() if isinstance(body, pydantic.BaseModel) else body
    response = Response(data, status=reply.status, content_type=reply.content_type,
                        headers=dict(reply.headers))
    if not isinstance(data, str | bytes):
        response.timeout = None  # a stream lasts as long as it has something to say
    return response


def _view(ctx: GatewayContext, route: Route) -> Any:
    timeout = ctx.settings.gateway.request_timeout_seconds

    async def view(**path: str) -> Response:
        try:
            with trio.fail_after(timeout):
                body = await _body(route, ctx.settings.gateway.max_json_depth)
                reply = await route.handler(RestRequest(
                    ctx=ctx, path=path, query=await _query(route), body=body,
                    principal=g.get("principal", ANONYMOUS), request_id=g.request_id))
            return _render(reply)
        except trio.TooSlowError:
            return error_response(ErrorInfo(
                http_status=408, grpc_status=Status.DEADLINE_EXCEEDED, code="request_timeout",
                message=f"no answer within the request timeout ({timeout}s)"))
        except HTTPException:
            raise  # answered by the HTTP error handler (413 and friends)
        except Exception as exc:
            return failure(exc)

    view.__name__ = route.name
    return view


class RestApp(QuartTrio):
    """QuartTrio whose responses are sent shielded (see rest/connection.py)."""

    asgi_http_class = ShieldedSendConnection


def create_app(ctx: GatewayContext) -> QuartTrio:
    routes = all_routes(ctx)
    by_name = {route.name: route for route in routes}
    app = RestApp("tasker_gateway")
    app.config["MAX_CONTENT_LENGTH"] = ctx.settings.gateway.max_request_bytes
    document = render(openapi_document(ctx.auth.api_key_header)).encode()
    for route in routes:
        app.add_url_rule(route.rule, route.name, _view(ctx, route), methods=[route.method])

    async def openapi_json() -> Response:
        return Response(document, content_type=JSON)

    app.add_url_rule("/api-docs/openapi.json", "openapi", openapi_json, methods=["GET"])
    docs.register(app)  # /api-docs/ui: Swagger UI from files in the package
    register_dashboard(app, ctx)  # /ui: the web dashboard

    @app.before_request
    async def admit() -> Response | None:
        given = request.headers.get("X-Request-Id", "")
        g.request_id = given if _REQUEST_ID.fullmatch(given) else str(uuid.uuid4())
        route = by_name.get(request.endpoint or "")
        if route is None or route.permission is None or request.method == "OPTIONS":
            return None
        try:
            if not ctx.accepting():
                raise Unavailable(f"the gateway is {ctx.runtime.state}; retry shortly",
                                  retry_after=5)
            principal = ctx.auth.authenticate(request.headers)
            ctx.auth.authorize(principal, route.permission)
        except TaskerError as exc:
            return failure(exc)
        g.principal = principal
        return None

    @app.after_request
    async def finish(response: Response) -> Response:
        response.headers["X-Request-Id"] = g.get("request_id") or str(uuid.uuid4())
        if _has_body() and not g.get("body_read"):
            response.headers["Connection"] = "close"  # unread body: do not reuse the socket
        response.headers["Access-Control-Allow-Origin"] = "*"
        response.headers["Access-Control-Expose-Headers"] = _EXPOSED
        if request.method == "OPTIONS":
            response.headers["Access-Control-Allow-Headers"] = (
                f"Authorization, Content-Type, X-Request-Id, {ctx.auth.api_key_header}")
            response.headers["Access-Control-Allow-Methods"] = "GET, POST, PATCH, DELETE"
        note = request.scope.get(ACCESS)
        if isinstance(note, dict):  # for the access log, written once the response is complete
            caller = g.get("principal")
            note.update(route=request.url_rule.rule if request.url_rule else None,
                        operation=request.endpoint or "unmatched",
                        principal=caller.subject if caller is not None else None,
                        request_id=g.get("request_id"))
        return response

    @app.errorhandler(HTTPException)
    async def http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        message = (f"no route for {request.method} {request.path}" if status == 404
                   else f"{request.method} is not allowed on {request.path}" if status == 405
                   else exc.description or exc.name)
        return error_response(ErrorInfo(http_status=status, grpc_status=Status.UNKNOWN,
                                        code=_HTTP_CODES.get(status, "http_error"),
                                        message=message))

    @app.errorhandler(Exception)
    async def unexpected(exc: Exception) -> Response:
        return failure(exc)

    app.asgi_app = AccessMiddleware(app.asgi_app)  # type: ignore[method-assign]
    return app
