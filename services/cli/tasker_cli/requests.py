"""Following a request queued with `--no-wait`: `GET /v1/task_requests/{id}` on the REST API.

The gRPC API has no lookup of a request id, so this one call goes over REST. Its base URL is
`--rest-url`, else TASKER_GATEWAY_REST_URL, else the REST URL of the `tasker up` running here
(when no gRPC address was given), else http(s)://<gRPC host>:8080.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

from tasker_cli.localstate import running_up
from tasker_cli.remote import gateway_address
from tasker_client import resolve_config
from tasker_client.errors import (
    AuthError,
    NotFoundError,
    PermissionDenied,
    RpcError,
    TaskerError,
    Unavailable,
    ValidationError,
)

REST_URL_ENV = "TASKER_GATEWAY_REST_URL"
DEFAULT_REST_PORT = 8080
MAX_BODY = 1 << 20


@dataclass(frozen=True, kw_only=True, slots=True)
class RequestOutcome:
    """What ingestion did with a request: created, duplicate or invalid."""

    request_id: str
    outcome: str
    task_uuid: str | None
    reason: str | None


def rest_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rest-url", metavar="URL",
                        help=f"gateway REST base URL for request lookups (else {REST_URL_ENV}, "
                        "else the `tasker up` running here, else http://<gRPC host>:8080)")


def rest_url(args: argparse.Namespace) -> str:
    """The REST base URL to use (see the module docstring)."""
    explicit = args.rest_url or os.environ.get(REST_URL_ENV, "").strip()
    if explicit:
        return str(explicit).rstrip("/")
    address = gateway_address(args)
    local = running_up() if args.address is None else None
    if local is not None and address == local.grpc_address:
        return local.rest_url.rstrip("/")
    endpoint = resolve_config(address).endpoint
    host = f"[{endpoint.host}]" if ":" in endpoint.host else endpoint.host
    return f"{'https' if endpoint.tls else 'http'}://{host}:{DEFAULT_REST_PORT}"


class RestLookup:
    """GET /v1/task_requests/{id} with the command's credentials."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.base = rest_url(args)
        config = resolve_config(gateway_address(args), token=args.token, api_key=args.api_key,
                                api_key_header=args.api_key_header)
        self.headers = {"accept": "application/json", **config.credentials.metadata()}
        self.timeout = args.timeout or 30.0

    def outcome(self, request_id: str) -> RequestOutcome | None:
        """The recorded outcome; None while ingestion has recorded none (HTTP 404)."""
        url = f"{self.base}/v1/task_requests/{urllib.parse.quote(request_id, safe='')}"
        request = urllib.request.Request(url, headers=self.headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                body = json.loads(response.read(MAX_BODY))
        except urllib.error.HTTPError as exc:
            error = _http_error(exc)
            if isinstance(error, NotFoundError):
                return None
            raise error from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise Unavailable(f"cannot reach the gateway's REST API at {self.base}: {reason}",
                              retry_after=1) from None
        except ValueError:
            raise RpcError(f"{url} did not answer JSON", status="INTERNAL") from None
        return RequestOutcome(request_id=str(body.get("request_id", request_id)),
                              outcome=str(body.get("outcome", "")),
                              task_uuid=body.get("task_uuid"), reason=body.get("reason"))

    def wait(self, request_id: str, *, timeout: float | None,
             on_waiting: Callable[[], None] | None = None) -> RequestOutcome:
        """Poll until ingestion recorded an outcome (at most `timeout` seconds, None: forever)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        pause = 0.1
        while True:
            found = self.outcome(request_id)
            if found is not None:
                return found
            if on_waiting is not None:
                on_waiting()
                on_waiting = None
            if deadline is not None and time.monotonic() + pause > deadline:
                raise NotFoundError(f"no outcome recorded for task request {request_id} "
                                    f"within {timeout:g}s")
            time.sleep(pause)
            pause = min(pause * 2, 1.0)


def _http_error(exc: urllib.error.HTTPError) -> TaskerError:
    try:
        detail = json.loads(exc.read(MAX_BODY)).get("error", {})
        message = str(detail.get("message") or exc.reason)
    except (ValueError, AttributeError, OSError):
        message = str(exc.reason)
    if exc.code == 404:
        return NotFoundError(message)
    if exc.code == 401:
        return AuthError(message)
    if exc.code == 403:
        return PermissionDenied(message)
    if exc.code in (400, 422):
        return ValidationError(message)
    if exc.code == 503:
        return Unavailable(message, retry_after=int(exc.headers.get("retry-after") or 1))
    return RpcError(f"HTTP {exc.code}: {message}", status=f"HTTP_{exc.code}")
