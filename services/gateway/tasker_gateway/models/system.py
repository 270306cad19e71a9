"""Health, backpressure and configuration bodies."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import Field

from tasker_gateway.models.common import ApiModel, JsonObject, NonNegative


class HealthState(StrEnum):
    HEALTHY = "healthy"
    DEGRADED = "degraded"
    UNHEALTHY = "unhealthy"


class SimpleHealthView(ApiModel):
    status: str = Field(description="'ok' from /health, 'alive' from /health/live")
    timestamp: datetime


class HealthCheckView(ApiModel):
    name: str
    state: HealthState
    message: str


class ReadinessView(ApiModel):
    ready: bool
    status: str = Field(description="'ready' or 'not_ready'")
    checks: list[HealthCheckView]
    timestamp: datetime


class PoolUtilizationView(ApiModel):
    pool_name: str
    size: NonNegative
    idle: NonNegative
    max_size: NonNegative
    utilization_percent: float = Field(ge=0)


class QueueDepthView(ApiModel):
    queue_name: str
    depth: NonNegative
    tier: str
    oldest_message_age_seconds: float = Field(ge=0)


class BackpressureView(ApiModel):
    active: bool
    reason: str
    retry_after_seconds: NonNegative
    queue_name: str | None
    queue_depth: NonNegative
    queue_depth_tier: str
    circuit_breaker_open: bool
    evaluated_at: datetime | None


class DetailedHealthView(ApiModel):
    state: HealthState
    status: str
    checks: list[HealthCheckView]
    pool_utilization: list[PoolUtilizationView]
    queue_depths: list[QueueDepthView]
    backpressure: BackpressureView
    version: str
    uptime_seconds: float = Field(ge=0)
    timestamp: datetime
    details: JsonObject


class ConfigView(ApiModel):
    config: JsonObject = Field(description="effective settings; secrets are redacted")
    redacted_fields: list[str]
    environment: str
    retrieved_at: datetime
