"""OpenTelemetry tracing configured from `Settings.telemetry`, with the W3C trace context
carried in PGMQ message headers so one task's spans across services join into one trace.

The gateway opens a SERVER span per API call continuing the caller's `traceparent`
(`start_server_span`, or `message_span` with kind SERVER), so a trace starts at the client.

Off by default: then `message_span` / `span` are no-ops and `inject_headers` passes the
headers through untouched (an upstream `traceparent` still travels on). Consumers open
`message_span(name, envelope.headers)` (parent = the sender's span) and send
`inject_headers(headers)` (the current span becomes the next hop's parent).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from opentelemetry.context import Context, attach
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import INVALID_SPAN, Span, SpanKind, Tracer, set_span_in_context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import AttributeValue

from tasker_shared.errors import ConfigError
from tasker_shared.runtime.settings import TelemetrySettings

TRACE_HEADERS = ("traceparent", "tracestate")
_PROPAGATOR = TraceContextTextMapPropagator()


@dataclass(frozen=True, kw_only=True, slots=True)
class _Tracing:
    key: tuple[str, str | None]
    provider: TracerProvider
    tracer: Tracer
    exporter: SpanExporter | None


_active: _Tracing | None = None


def _exporter(settings: TelemetrySettings) -> SpanExporter | None:
    if settings.exporter == "memory":
        return InMemorySpanExporter()
    if settings.exporter == "console":
        return ConsoleSpanExporter()
    if settings.exporter == "otlp":
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # type: ignore[import-not-found]
                OTLPSpanExporter,
            )
        except ImportError as exc:
            raise ConfigError(
                "telemetry.exporter = 'otlp' needs the opentelemetry-exporter-otlp-proto-http "
                "package") from exc
        exporter: SpanExporter = OTLPSpanExporter(endpoint=settings.otlp_endpoint)
        return exporter
    return None


def configure_tracing(settings: TelemetrySettings, *, service: str) -> bool:
    """Set up (or turn off) tracing for this process; True when tracing is on.

    Idempotent: services sharing a process with the same settings share one provider.
    """
    global _active
    if not settings.tracing_enabled:
        shutdown_tracing()
        return False
    key = (settings.exporter, settings.otlp_endpoint)
    if _active is not None and _active.key == key:
        return True
    shutdown_tracing()
    exporter = _exporter(settings)
    provider = TracerProvider(resource=Resource.create({"service.name": f"tasker-{service}"}))
    if isinstance(exporter, InMemorySpanExporter):
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    elif exporter is not None:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    _active = _Tracing(key=key, provider=provider, tracer=provider.get_tracer("tasker"),
                       exporter=exporter)
    return True


def shutdown_tracing() -> None:
    """Flush and drop the current provider; tracing is off afterwards."""
    global _active
    current, _active = _active, None
    if current is not None:
        current.provider.shutdown()


def tracing_enabled() -> bool:
    return _active is not None


def memory_exporter() -> InMemorySpanExporter | None:
    """The in-memory exporter when `telemetry.exporter = 'memory'` (tests)."""
    if _active is not None and isinstance(_active.exporter, InMemorySpanExporter):
        return _active.exporter
    return None


def extract_context(headers: Mapping[str, Any] | None) -> Context:
    """The remote span context carried by message headers (empty when there is none)."""
    carrier = {k: v for k, v in (headers or {}).items()
               if k in TRACE_HEADERS and isinstance(v, str)}
    return _PROPAGATOR.extract(carrier)


def inject_headers(headers: Mapping[str, Any] | None) -> dict[str, Any]:
    """A copy of `headers` carrying the current span's context (when tracing is on)."""
    out = dict(headers or {})
    if _active is not None:
        carrier: dict[str, str] = {}
        _PROPAGATOR.inject(carrier)
        out.update(carrier)
    return out


@contextmanager
def message_span(
    name: str, headers: Mapping[str, Any] | None, *,
    attributes: Mapping[str, AttributeValue] | None = None,
    kind: SpanKind = SpanKind.CONSUMER,
) -> Iterator[Span]:
    """A span for handling a message: its parent is the span that sent it (if any)."""
    if _active is None:
        yield INVALID_SPAN
        return
    with _active.tracer.start_as_current_span(
            name, context=extract_context(headers), kind=kind, attributes=attributes) as current:
        yield current


@contextmanager
def span(
    name: str, *, attributes: Mapping[str, AttributeValue] | None = None,
    kind: SpanKind = SpanKind.INTERNAL,
) -> Iterator[Span]:
    """A child of the current span (a root span when there is none)."""
    if _active is None:
        yield INVALID_SPAN
        return
    with _active.tracer.start_as_current_span(name, kind=kind, attributes=attributes) as current:
        yield current


def start_server_span(
    name: str, headers: Mapping[str, Any] | None, *,
    attributes: Mapping[str, AttributeValue] | None = None,
) -> Span:
    """A SERVER span continuing the caller's `traceparent` (a root span without one), made
    current in the calling context for what runs after it there; end it with `span.end()`.

    For servers whose start and end of a call are separate callbacks in one task (grpclib's
    events); a block of code uses `message_span(..., kind=SpanKind.SERVER)` instead."""
    if _active is None:
        return INVALID_SPAN
    current = _active.tracer.start_span(name, context=extract_context(headers),
                                        kind=SpanKind.SERVER, attributes=attributes)
    attach(set_span_in_context(current))
    return current
