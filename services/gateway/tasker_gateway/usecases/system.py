"""Health (live, ready, detailed) and the redacted configuration (SPEC 7.1)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from importlib import metadata
from typing import Any

from tasker_gateway.context import GatewayContext
from tasker_gateway.models.system import (
    BackpressureView,
    ConfigView,
    DetailedHealthView,
    HealthCheckView,
    HealthState,
    PoolUtilizationView,
    QueueDepthView,
    ReadinessView,
    SimpleHealthView,
)
from tasker_shared.errors import NotFoundError
from tasker_shared.runtime.health import check_state

REDACTED = "***REDACTED***"
_SECRET_NAMES = frozenset({"key", "password", "secret", "token", "jwt_public_key",
                           "jwt_private_key", "url"})


def now() -> datetime:
    return datetime.now(UTC)


def _version() -> str:
    try:
        return metadata.version("tasker")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "unknown"


VERSION = _version()


def simple(status: str) -> SimpleHealthView:
    return SimpleHealthView(status=status, timestamp=now())


def _checks(raw: dict[str, Any]) -> list[HealthCheckView]:
    return [HealthCheckView(name=name, message=str(value),
                            state=HealthState(check_state(name, value)))
            for name, value in raw.items()]


async def readiness(ctx: GatewayContext) -> ReadinessView:
    ok, raw = await ctx.runtime.readiness()
    return ReadinessView(ready=ok, status="ready" if ok else "not_ready", checks=_checks(raw),
                         timestamp=now())


def backpressure_view(ctx: GatewayContext) -> BackpressureView:
    s = ctx.backpressure.status
    return BackpressureView(active=s.active, reason=s.reason,
                            retry_after_seconds=s.retry_after_seconds, queue_name=s.queue_name,
                            queue_depth=s.queue_depth, queue_depth_tier=s.queue_depth_tier,
                            circuit_breaker_open=not s.database_ok, evaluated_at=s.evaluated_at)


async def detailed(ctx: GatewayContext) -> DetailedHealthView:
    ok, raw = await ctx.runtime.readiness()
    pressure = backpressure_view(ctx)
    stats = ctx.db.statistics()
    in_use = max(stats.pool_size - stats.pool_available, 0)
    state = (HealthState.UNHEALTHY if not ok
             else HealthState.DEGRADED if pressure.active else HealthState.HEALTHY)
    details = dict(ctx.runtime.details())
    details["gateway"] = {"outcomes": ctx.outcomes.statistics(),
                          "streams": ctx.hub.statistics(),
                          "backpressure_rejections": ctx.backpressure.rejections,
                          "analytics_cache": {"hits": ctx.analytics.hits,
                                              "misses": ctx.analytics.misses}}
    return DetailedHealthView(
        state=state, status=state.value, checks=_checks(raw),
        pool_utilization=[PoolUtilizationView(
            pool_name="database", size=stats.pool_size, idle=stats.pool_available,
            max_size=stats.pool_max,
            utilization_percent=round(100 * in_use / stats.pool_max, 2) if stats.pool_max
            else 0.0)],
        queue_depths=[QueueDepthView(queue_name=q.queue_name, depth=q.depth, tier=q.tier,
                                     oldest_message_age_seconds=max(q.oldest_age_seconds, 0.0))
                      for q in sorted(ctx.backpressure.depths.values(),
                                      key=lambda q: q.queue_name)],
        backpressure=pressure, version=VERSION,
        uptime_seconds=round(max(time.time() - ctx.runtime.started_at, 0.0), 1),
        timestamp=now(), details=details)


def redact(value: Any, path: str, redacted: list[str]) -> Any:
    """`value` with secret-looking fields replaced; their dotted paths go to `redacted`."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            if key in _SECRET_NAMES and item not in (None, ""):
                out[key] = REDACTED
                redacted.append(where)
            else:
                out[key] = redact(item, where, redacted)
        return out
    if isinstance(value, list):
        return [redact(item, f"{path}[{i}]", redacted) for i, item in enumerate(value)]
    return value


def config(ctx: GatewayContext) -> ConfigView:
    if not ctx.settings.gateway.config_endpoint_enabled:
        raise NotFoundError("the config endpoint is disabled"
                            " (gateway.config_endpoint_enabled = false)")
    redacted: list[str] = []
    data = redact(ctx.settings.model_dump(mode="json"), "", redacted)
    return ConfigView(config=data, redacted_fields=redacted,
                      environment=ctx.settings.environment, retrieved_at=now())
