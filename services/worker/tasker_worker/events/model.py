"""The routed form of one domain event, its queue name and its id (UUIDv7)."""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass

from tasker_shared.domain.template.enums import DeliveryMode
from tasker_worker.sdk.events import DomainEvent


def domain_events_queue(namespace: str) -> str:
    """tasker-core's queue of a namespace's durable events."""
    return f"{namespace}_domain_events"


def uuid7() -> uuid.UUID:
    """A time-ordered UUID (RFC 9562 version 7): 48 bits of Unix milliseconds, then random."""
    value = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(os.urandom(10), "big")
    value = value & ~(0xF << 76) | 0x7 << 76  # version 7
    value = value & ~(0x3 << 62) | 0x2 << 62  # RFC 4122 variant
    return uuid.UUID(int=value)


@dataclass(frozen=True, slots=True)
class RoutedEvent:
    """An event a step publishes, with how it is delivered."""

    mode: DeliveryMode
    event: DomainEvent

    @property
    def durable(self) -> bool:
        return self.mode is not DeliveryMode.FAST

    @property
    def fast(self) -> bool:
        return self.mode is not DeliveryMode.DURABLE
