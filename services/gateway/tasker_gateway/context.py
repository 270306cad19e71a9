"""Everything a use case needs, built once per gateway process and passed explicitly."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol
from uuid import UUID

from tasker_gateway.auth import Authenticator
from tasker_gateway.backpressure import BackpressureMonitor
from tasker_gateway.outcomes import OutcomeWaiter
from tasker_gateway.streams import StatusHub
from tasker_shared.db.database import Database
from tasker_shared.runtime.settings import Settings
from tasker_shared.store.analytics import AnalyticsCache
from tasker_shared.store.templates import TemplateCache


class RuntimeView(Protocol):
    """The parts of tasker_shared.runtime.service.Runtime the gateway reads."""

    state: str
    started_at: float
    instance_id: str

    @property
    def listening(self) -> bool: ...

    async def readiness(self) -> tuple[bool, dict[str, Any]]: ...

    def details(self) -> dict[str, Any]: ...


@dataclass(frozen=True, kw_only=True, slots=True)
class GatewayContext:
    settings: Settings
    db: Database
    runtime: RuntimeView
    processor_uuid: UUID
    auth: Authenticator
    outcomes: OutcomeWaiter
    hub: StatusHub
    backpressure: BackpressureMonitor
    analytics: AnalyticsCache
    templates: TemplateCache

    def accepting(self) -> bool:
        """True while the gateway serves API calls (not starting, not draining)."""
        return self.runtime.state == "normal"


def build_context(settings: Settings, db: Database, runtime: RuntimeView,
                  processor_uuid: UUID) -> GatewayContext:
    gateway = settings.gateway
    return GatewayContext(
        settings=settings, db=db, runtime=runtime, processor_uuid=processor_uuid,
        auth=Authenticator(gateway.auth), outcomes=OutcomeWaiter(),
        hub=StatusHub(), backpressure=BackpressureMonitor(db=db, settings=gateway),
        analytics=AnalyticsCache(gateway.analytics_cache_seconds), templates=TemplateCache())
