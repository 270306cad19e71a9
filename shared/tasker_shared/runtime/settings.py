"""Settings for every service: environment variables over an optional TOML file, validated.

Keys are grouped in sections. Environment variables use the `TASKER_` prefix and `__`
between section and key (`TASKER_QUEUES__VISIBILITY_TIMEOUT_SECONDS=30`). A TOML file named
by `TASKER_CONFIG_PATH` supplies the same keys as tables (`[queues]`). Two shortcuts are
honoured for the database URL: `TASKER_DATABASE_URL` and `DATABASE_URL`. The environment is
`TASKER_ENVIRONMENT` or, as tasker-core names it, `TASKER_ENV`.
"""

from __future__ import annotations

import os
import tomllib
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from tasker_shared.db.connect import database_url_from_env
from tasker_shared.errors import ConfigError


class DeploymentMode(StrEnum):
    EVENT_DRIVEN = "event_driven"
    POLLING = "polling"
    HYBRID = "hybrid"

    @property
    def listens(self) -> bool:
        return self is not DeploymentMode.POLLING

    @property
    def polls(self) -> bool:
        return self is not DeploymentMode.EVENT_DRIVEN


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


class DatabaseSettings(_Section):
    url: str | None = Field(None, description="PostgreSQL URL; unset starts an embedded server")
    pool_min: int = Field(2, ge=1, le=200)
    """Connections each process keeps open."""
    pool_max: int = Field(10, ge=1, le=500)
    """Most connections (and worker threads for queries) per process."""
    statement_timeout_ms: int = Field(30_000, ge=100)
    """Server-side statement_timeout of every pooled connection."""
    connect_timeout_seconds: float = Field(10.0, gt=0)
    """How long one connection attempt may take (libpq's `connect_timeout`, whole seconds,
    at least 2), and how long start-up waits for the pool's first connections."""
    synchronous_commit: bool = Field(True, description="off trades durability of the last ms for speed")

    @model_validator(mode="after")
    def _pool_bounds(self) -> DatabaseSettings:
        if self.pool_min > self.pool_max:
            raise ValueError("pool_min must not exceed pool_max")
        return self


class QueueSettings(_Section):
    deployment_mode: DeploymentMode = DeploymentMode.HYBRID
    """event_driven (LISTEN only), polling (poll only) or hybrid (both)."""
    visibility_timeout_seconds: int = Field(30, ge=1, le=86_400)
    """How long a claimed step message stays invisible; workers extend it while a handler runs."""
    poll_interval_ms: int = Field(1000, ge=10, le=600_000)
    """Fallback poll interval of every consumer (the safety net under NOTIFY)."""
    batch_size: int = Field(50, ge=1, le=1000)
    """Messages taken per transaction (larger batches: fewer commits per message under load;
    a lone message is still taken at once)."""
    max_read_count: int = Field(5, ge=1, le=1000, description="reads before a message is poison")
    channel_capacity: int = Field(256, ge=1)
    """Bound of the memory channel between intake and handler tasks."""
    handler_tasks: int = Field(2, ge=1, le=256)
    """Concurrent handler tasks (parallel transactions) per orchestration queue. Two keep a
    batch filling while another commits; more split a backlog into smaller transactions that
    contend for the same task rows (1,000 linear tasks on 2 vCPUs: ~650 steps/s with 4
    tasks of 20 messages, ~820 with 2 tasks of 50)."""


class ServiceSettings(_Section):
    health_host: str = "0.0.0.0"
    """Interface of the /health and /metrics endpoint."""
    health_port: int | None = Field(None, ge=0, le=65535, description="None: the service default")
    shutdown_timeout_seconds: float = Field(20.0, gt=0)
    """Deadline for in-flight work after SIGTERM; then it is cancelled and rolled back."""
    log_level: str = "INFO"
    """DEBUG, INFO, WARNING or ERROR."""
    log_format: str = Field("json", pattern="^(json|console)$")
    """json (one object per line) or console."""
    instance_id: str | None = None
    """Name of this replica in logs (defaults to host and pid)."""
    metrics_sample_interval_seconds: float = Field(5.0, gt=0, description="queue depth sampling")


class BackoffSettings(_Section):
    base_seconds: float = Field(1.0, ge=0)
    """First retry delay; the n-th retry waits base * multiplier^n."""
    multiplier: float = Field(2.0, ge=1.0)
    """Growth factor of the exponential backoff."""
    max_seconds: float = Field(60.0, ge=0)
    """Cap on any retry delay, server-requested (Retry-After) included."""
    jitter_enabled: bool = True
    """Add or subtract a random share of the delay."""
    jitter_max_percentage: float = Field(0.15, ge=0, le=1)
    """Largest jitter as a fraction of the delay."""


class WorkerSettings(_Section):
    namespaces: list[str] = Field(default_factory=lambda: ["default"])
    """Namespaces whose queues this worker consumes (template namespaces are added)."""
    handler_modules: list[str] = Field(default_factory=list)
    """Modules imported at start so their handlers register."""
    template_paths: list[str] = Field(default_factory=list)
    """Template files, directories or globs registered at start."""
    max_concurrent_handlers: int = Field(10, ge=1, le=10_000)
    """Handlers a worker runs at once (claims stop at this many). A step's slot is free again
    when its handler returns; its result is recorded meanwhile (in batches), so up to about
    twice this many steps may be claimed and not yet recorded."""
    handler_timeout_seconds: float = Field(30.0, gt=0)
    """Default handler timeout (a step's timeout_seconds overrides it)."""
    worker_id: str | None = None
    """Worker identity recorded on results (defaults to host-pid)."""
    max_result_bytes: int = Field(1_048_576, ge=1024)
    """Largest step result (its JSON) a handler may return; a larger one fails the step
    (non-retryable, naming the limit) instead of being stored."""
    handler_check: Literal["warn", "fail", "off"] = "warn"
    """At start: handlers the templates name that do not resolve (or declare dependencies
    their step lacks) are logged as warnings (warn) or stop the worker (fail)."""


class ReadinessSettings(_Section):
    poll_interval_seconds: float = Field(5.0, gt=0, description="safety-net readiness poller")
    batch_size: int = Field(50, ge=1)
    """Tasks evaluated per sweep."""


class DecisionSettings(_Section):
    enabled: bool = True
    """Apply decision_point_outcome results."""
    max_steps_per_decision: int = Field(100, ge=1)
    """Most steps one decision may create."""
    max_decision_depth: int = Field(20, ge=1)
    """Most nested decisions on a path."""
    warn_threshold_steps: int = Field(50, ge=1)
    """A decision creating more steps than this is logged as a warning."""
    warn_threshold_depth: int = Field(10, ge=1)
    """A decision nested deeper than this is logged as a warning."""


class BatchSettings(_Section):
    enabled: bool = True
    """Apply batch_processing_outcome results."""
    max_parallel_batches: int = Field(50, ge=1)
    """Most batch workers one batchable step may create."""
    default_batch_size: int = Field(1000, ge=1)
    """Batch size when a template gives none."""
    checkpoint_stall_minutes: float = Field(15.0, gt=0)
    """A running batch step without checkpoint progress this long is reported."""
    stall_check_interval_seconds: float = Field(60.0, gt=0, description="checkpoint stall scan")


class StalenessSettings(_Section):
    enabled: bool = True
    """Run the staleness detector in the finalization service."""
    detection_interval_seconds: float = Field(300.0, gt=0)
    """Time between detector passes."""
    batch_size: int = Field(100, ge=1)
    """Tasks handled per pass."""
    dry_run: bool = False
    """Report what would be done; change nothing."""
    waiting_for_dependencies_minutes: float = Field(60.0, gt=0)
    """Threshold for waiting_for_dependencies (template lifecycle overrides)."""
    waiting_for_retry_minutes: float = Field(30.0, gt=0)
    """Threshold for waiting_for_retry (template lifecycle overrides)."""
    steps_in_process_minutes: float = Field(30.0, gt=0)
    """Threshold for steps_in_process (template lifecycle overrides)."""
    task_max_lifetime_hours: float = Field(24.0, gt=0)
    """Any task older than this is stale."""
    stuck_active_minutes: float = Field(10.0, gt=0)
    """Active states (initializing, enqueuing, evaluating) older than this are reported."""
    auto_transition_to_error: bool = True
    """Move stale tasks to error."""
    auto_move_to_dlq: bool = True
    """Write a DLQ entry for stale tasks."""


class MaintenanceSettings(_Section):
    """Table upkeep by the finalization service (one replica at a time, advisory lock):
    VACUUM/ANALYZE of the queue and state tables whatever the server's autovacuum does,
    and retention of finished tasks."""

    enabled: bool = True
    """Run the maintenance loop in the finalization service."""
    queue_interval_seconds: float = Field(10.0, gt=0)
    """How often the PGMQ queue and archive tables are checked (and vacuumed if needed)."""
    state_interval_seconds: float = Field(60.0, gt=0)
    """How often Tasker's own tables are checked (and vacuumed/analyzed if needed)."""
    queue_dead_rows: int = Field(1000, ge=1)
    """A queue table with at least this many dead rows is vacuumed."""
    state_dead_rows: int = Field(10_000, ge=1)
    """A state table is vacuumed once its dead rows reach this many and also
    `state_dead_fraction` of its live rows."""
    state_dead_fraction: float = Field(0.05, ge=0)
    """See `state_dead_rows`."""
    state_inserted_rows: int = Field(100_000, ge=1)
    """A state table with this many rows inserted since its last vacuum (and 20% of its
    live rows) is vacuumed too, so index-only scans find its pages all-visible."""
    analyze_changed_rows: int = Field(5000, ge=1)
    """A table is analyzed once this many rows (and `analyze_fraction` of its live rows)
    changed since its last ANALYZE."""
    analyze_fraction: float = Field(0.1, ge=0)
    """See `analyze_changed_rows`."""
    lock_timeout_ms: int = Field(200, ge=1)
    """lock_timeout of maintenance statements: they give way to the live path."""
    statement_timeout_ms: int = Field(600_000, ge=1000)
    """statement_timeout of maintenance statements (a VACUUM of a large table is slow)."""
    retention_days: float = Field(30.0, ge=0)
    """Finished tasks (with their steps, transitions, audit rows, DLQ history), request
    outcomes, poison records and archived messages older than this are deleted; 0 keeps
    everything. Tasks with an open DLQ investigation are kept."""
    prune_interval_seconds: float = Field(300.0, gt=0)
    """Time between retention passes."""
    prune_batch_size: int = Field(500, ge=1, le=100_000)
    """Tasks deleted per transaction."""
    prune_max_batches: int = Field(200, ge=1)
    """Most batches per retention pass (the rest waits for the next pass)."""
    prune_pause_seconds: float = Field(0.05, ge=0)
    """Pause between batches, leaving the database to the live path."""


class CircuitBreakerSettings(_Section):
    enabled: bool = True
    """Guard database and queue calls with circuit breakers."""
    failure_threshold: int = Field(5, ge=1, description="consecutive failures that open it")
    timeout_seconds: float = Field(30.0, ge=0, description="open for this long, then half-open")
    success_threshold: int = Field(2, ge=1, description="half-open successes that close it")
    probe_interval_seconds: float = Field(0.5, ge=0)
    """While the database breaker is open, a `SELECT 1` on a fresh connection runs at most
    this often and closes it as soon as the database answers (0: wait `timeout_seconds`)."""


class AuthApiKey(_Section):
    key: str
    permissions: list[str] = Field(default_factory=list)
    description: str = ""


class AuthSettings(_Section):
    enabled: bool = False
    """Require credentials on protected routes and RPCs (health and metrics stay public)."""
    api_key_header: str = "x-api-key"
    """Header (REST) / metadata key (gRPC) carrying an API key."""
    api_keys: list[AuthApiKey] = Field(default_factory=list)
    """Accepted API keys with their permissions."""
    jwt_issuer: str = "tasker-core"
    """Required iss claim."""
    jwt_audience: str = "tasker-api"
    """Required aud claim."""
    jwt_public_key: str | None = None
    """PEM public key verifying JWTs."""
    jwt_public_key_path: str | None = None
    """File holding the PEM public key."""
    jwt_allowed_algorithms: list[str] = Field(default_factory=lambda: ["RS256"])
    """Accepted JWT algorithms."""
    permissions_claim: str = "permissions"
    """Claim listing the token's permissions."""
    strict_validation: bool = True
    """Reject tokens naming unknown permissions."""
    jwt_private_key_path: str | None = Field(
        None, description="signing key for `tasker auth token` (development only)")
    jwt_token_expiry_hours: float = Field(24.0, gt=0, description="lifetime of issued tokens")


class GatewaySettings(_Section):
    rest_host: str = "0.0.0.0"
    """Interface of the REST API (also /health and /metrics)."""
    rest_port: int = Field(8080, ge=0, le=65535)
    """Port of the REST API."""
    grpc_host: str = "0.0.0.0"
    """Interface of the gRPC API."""
    grpc_port: int = Field(9190, ge=0, le=65535)
    """Port of the gRPC API."""
    create_wait_timeout_seconds: float = Field(5.0, gt=0)
    """How long task creation waits for ingestion before answering 202."""
    max_batch_tasks: int = Field(1000, ge=1, le=10_000)
    """Most task requests one batch create (CreateTasks, POST /v1/tasks/batch) may carry; the
    batch's total size is bounded by max_request_bytes / grpc_max_message_bytes."""
    config_endpoint_enabled: bool = False
    """Serve GET /config and ConfigService (secrets redacted)."""
    queue_depth_critical: int = Field(5000, ge=1)
    """Queue depth at which creation answers 503 / RESOURCE_EXHAUSTED (retry 30 s)."""
    queue_depth_overflow: int = Field(10_000, ge=1)
    """Queue depth at which creation answers 503 (retry 60 s)."""
    backpressure_refresh_seconds: float = Field(1.0, gt=0)
    """How often cached queue depths are refreshed."""
    analytics_cache_seconds: float = Field(60.0, ge=0)
    """How long analytics answers are cached."""
    auth: AuthSettings = Field(default_factory=AuthSettings)
    request_timeout_seconds: float = Field(30.0, gt=0, description="REST answers 408 past this")
    max_request_bytes: int = Field(1_048_576, ge=1024, description="largest accepted body")
    max_json_depth: int = Field(64, ge=1, le=128)
    """Deepest nesting accepted in a request's free-form JSON (context, options, manual
    results, metadata) on REST and gRPC; REST's JSON parser itself stops near 200 levels."""
    max_json_bytes: int = Field(1_048_576, ge=1024)
    """Largest free-form JSON value (a context, a manual result...) a request may carry."""
    grpc_max_message_bytes: int = Field(
        1_048_576, ge=1024, description="largest accepted gRPC request message")
    stream_resync_seconds: float = Field(
        30.0, gt=0, description="StreamTaskStatus re-reads the task this often (safety net)")
    max_streams: int = Field(1000, ge=1, description="concurrent StreamTaskStatus calls")
    grpc_reflection: bool = True
    """Serve gRPC server reflection."""
    grpc_health_service: bool = True
    """Serve grpc.health.v1."""


class TelemetrySettings(_Section):
    tracing_enabled: bool = False
    """Emit OpenTelemetry spans (context travels in queue message headers)."""
    exporter: str = Field("none", pattern="^(none|console|otlp|memory)$")
    """none, console, otlp or memory (tests)."""
    otlp_endpoint: str | None = None
    """OTLP endpoint when exporter is otlp."""


class Settings(BaseSettings):
    """All of Tasker's settings; each service reads the sections it needs."""

    model_config = SettingsConfigDict(
        env_prefix="TASKER_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
        use_attribute_docstrings=True,
    )

    environment: str = Field("development", validation_alias=AliasChoices(
        "TASKER_ENVIRONMENT", "TASKER_ENV", "environment"))
    """Selects template `environments` overrides (test, development, production, ...);
    read from `TASKER_ENVIRONMENT`, else `TASKER_ENV` (tasker-core's name)."""
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    queues: QueueSettings = Field(default_factory=QueueSettings)
    service: ServiceSettings = Field(default_factory=ServiceSettings)
    backoff: BackoffSettings = Field(default_factory=BackoffSettings)
    worker: WorkerSettings = Field(default_factory=WorkerSettings)
    readiness: ReadinessSettings = Field(default_factory=ReadinessSettings)
    decisions: DecisionSettings = Field(default_factory=DecisionSettings)
    batches: BatchSettings = Field(default_factory=BatchSettings)
    staleness: StalenessSettings = Field(default_factory=StalenessSettings)
    maintenance: MaintenanceSettings = Field(default_factory=MaintenanceSettings)
    gateway: GatewaySettings = Field(default_factory=GatewaySettings)
    telemetry: TelemetrySettings = Field(default_factory=TelemetrySettings)
    circuit_breakers: CircuitBreakerSettings = Field(default_factory=CircuitBreakerSettings)


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _describe(exc: ValidationError, source: str) -> str:
    lines = [f"invalid settings ({source}):"]
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"])
        lines.append(f"  {where}: {err['msg']}")
    return "\n".join(lines)


def load_settings(
    *, config_path: str | Path | None = None, overrides: dict[str, Any] | None = None
) -> Settings:
    """Read settings: TOML file (if any) < environment < explicit overrides."""
    path = config_path or os.environ.get("TASKER_CONFIG_PATH")
    file_values: dict[str, Any] = {}
    source = "environment"
    if path:
        source = f"{path} and environment"
        try:
            file_values = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ConfigError(f"config file not found: {path}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
    url = database_url_from_env()
    if url:
        file_values = _deep_merge(file_values, {"database": {"url": url}})
    try:
        # Environment variables take precedence over init values for nested keys only when
        # given; pydantic-settings merges init kwargs over env, so merge env in explicitly.
        env_only = Settings()
        env_values = env_only.model_dump(exclude_unset=True)
        return Settings(**_deep_merge(_deep_merge(file_values, env_values), overrides or {}))
    except ValidationError as exc:
        raise ConfigError(_describe(exc, source)) from exc
