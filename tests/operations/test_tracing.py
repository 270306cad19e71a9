"""Tracing configuration and W3C context propagation through message headers (unit level;
the whole pipeline is traced in test_observability.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.trace import INVALID_SPAN

from tasker_shared.errors import ConfigError
from tasker_shared.runtime import tracing
from tasker_shared.runtime.settings import TelemetrySettings

PARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.fixture(autouse=True)
def _reset() -> Iterator[None]:
    tracing.shutdown_tracing()
    yield
    tracing.shutdown_tracing()


def test_off_by_default_passes_headers_through() -> None:
    assert not tracing.configure_tracing(TelemetrySettings(), service="test")
    assert not tracing.tracing_enabled() and tracing.memory_exporter() is None
    headers = {"traceparent": PARENT, "other": 1}
    with tracing.message_span("x", headers) as span:
        assert span is INVALID_SPAN
        assert tracing.inject_headers(headers) == headers
    with tracing.span("y") as inner:
        assert inner is INVALID_SPAN
    assert tracing.inject_headers(None) == {}


def test_memory_exporter_links_spans_through_headers() -> None:
    settings = TelemetrySettings(tracing_enabled=True, exporter="memory")
    assert tracing.configure_tracing(settings, service="test")
    exporter = tracing.memory_exporter()
    assert exporter is not None
    assert tracing.configure_tracing(settings, service="other")  # same settings: kept
    assert tracing.memory_exporter() is exporter
    with tracing.message_span("consume", {"traceparent": PARENT, "tracestate": 7}) as span:
        context = span.get_span_context()
        assert format(context.trace_id, "032x") == "0af7651916cd43dd8448eb211c80319c"
        out = tracing.inject_headers({"keep": "me", "traceparent": PARENT})
        with tracing.span("child") as child:
            assert child.get_span_context().trace_id == context.trace_id
    assert out["keep"] == "me"
    assert out["traceparent"] == f"00-{context.trace_id:032x}-{context.span_id:016x}-01"
    consume, = [s for s in exporter.get_finished_spans() if s.name == "consume"]
    assert consume.parent is not None and consume.parent.span_id == 0xB7AD6B7169203331
    with tracing.message_span("orphan", {"traceparent": "garbage"}) as orphan:
        assert orphan.get_span_context().trace_id != context.trace_id  # a new trace
    assert tracing.extract_context(None) == tracing.extract_context({})


def test_exporters() -> None:
    assert tracing.configure_tracing(
        TelemetrySettings(tracing_enabled=True, exporter="console"), service="test")
    assert tracing.tracing_enabled() and tracing.memory_exporter() is None
    assert tracing.configure_tracing(
        TelemetrySettings(tracing_enabled=True, exporter="none"), service="test")
    with tracing.span("recorded") as span:
        assert span.get_span_context().is_valid  # ids propagate even when nothing exports
    try:
        import opentelemetry.exporter.otlp.proto.http  # type: ignore[import-not-found]  # noqa: F401
    except ImportError:
        with pytest.raises(ConfigError, match="otlp"):
            tracing.configure_tracing(TelemetrySettings(tracing_enabled=True, exporter="otlp"),
                                      service="test")
    else:  # pragma: no cover - only where the OTLP exporter is installed
        assert tracing.configure_tracing(
            TelemetrySettings(tracing_enabled=True, exporter="otlp"), service="test")
    assert not tracing.configure_tracing(TelemetrySettings(), service="test")
    assert not tracing.tracing_enabled()
