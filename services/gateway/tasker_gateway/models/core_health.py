"""The gateway's REST health bodies in tasker-core's shapes (`HealthResponse`, `ReadinessResponse`,
`DetailedHealthResponse`): its named checks, each `{status, message, duration_ms}`, plus
Tasker's own checks under their own names and Tasker's detail fields (marked "Tasker")."""

from __future__ import annotations

from datetime import datetime

from pydantic import ConfigDict, Field

from tasker_gateway.models.common import ApiModel, JsonObject, NonNegative
from tasker_gateway.models.system import (
    BackpressureView,
    HealthState,
    PoolUtilizationView,
    QueueDepthView,
)


class HealthResponse(ApiModel):
    """`/health` answers `healthy`, `/health/live` answers `alive` (as tasker-core does);
    worker_id and service as every Tasker service's health endpoint answers them."""

    status: str
    timestamp: datetime
    worker_id: str = Field(description="this process's id (service.instance_id); Tasker")
    service: str = Field(description="Tasker: the service answering (gateway)")


class HealthCheck(ApiModel):
    status: HealthState
    message: str | None
    duration_ms: NonNegative


class ReadinessChecks(ApiModel):
    """tasker-core's five readiness checks; Tasker's own checks follow under their names."""

    model_config = ConfigDict(frozen=True, extra="allow")

    web_database: HealthCheck
    orchestration_database: HealthCheck
    circuit_breaker: HealthCheck
    orchestration_system: HealthCheck
    command_processor: HealthCheck


class DetailedHealthChecks(ReadinessChecks):
    pool_utilization: HealthCheck
    queue_depth: HealthCheck
    channel_saturation: HealthCheck


class HealthInfo(ApiModel):
    version: str
    environment: str
    operational_state: str
    web_database_pool_size: NonNegative
    orchestration_database_pool_size: NonNegative
    circuit_breaker_state: str


class ReadinessResponse(ApiModel):
    status: str = Field(description="'ready' or 'not_ready' (503)")
    timestamp: datetime
    worker_id: str = Field(description="Tasker")
    service: str = Field(description="Tasker")
    checks: ReadinessChecks
    info: HealthInfo
    ready: bool = Field(description="Tasker")


class DetailedHealthResponse(ApiModel):
    status: str = Field(description="'healthy', 'degraded' or 'unhealthy' (503)")
    timestamp: datetime
    worker_id: str = Field(description="Tasker")
    service: str = Field(description="Tasker")
    checks: DetailedHealthChecks
    info: HealthInfo
    state: HealthState = Field(description="Tasker")
    pool_utilization: list[PoolUtilizationView] = Field(description="Tasker")
    queue_depths: list[QueueDepthView] = Field(description="Tasker")
    backpressure: BackpressureView = Field(description="Tasker")
    version: str = Field(description="Tasker")
    uptime_seconds: float = Field(ge=0, description="Tasker")
    details: JsonObject = Field(description="Tasker")
