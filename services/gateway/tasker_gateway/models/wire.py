"""Date-time spellings of tasker-core's REST types, as annotated pydantic types.

tasker-core serializes three kinds of timestamps, and its clients parse each strictly:
`DateTime<Utc>` (RFC 3339 with an offset: plain `datetime` here), `NaiveDateTime` (no offset,
UTC implied: `NaiveUtc`) and pre-formatted strings `%Y-%m-%dT%H:%M:%S%.6fZ` (`MicroZ`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import PlainSerializer, WithJsonSchema

NAIVE_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?$"
MICRO_Z_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$"


def naive_utc(value: datetime) -> str:
    """`value` in UTC without an offset (chrono's NaiveDateTime spelling)."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat()


def micro_z(value: datetime) -> str:
    """`value` in UTC as `YYYY-MM-DDTHH:MM:SS.ffffffZ` (always six fraction digits)."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


NaiveUtc = Annotated[datetime, PlainSerializer(naive_utc, return_type=str),
                     WithJsonSchema({"type": "string", "pattern": NAIVE_PATTERN,
                                     "description": "UTC date-time without an offset"})]
MicroZ = Annotated[datetime, PlainSerializer(micro_z, return_type=str),
                   WithJsonSchema({"type": "string", "pattern": MICRO_Z_PATTERN,
                                   "description": "UTC date-time, six fraction digits, Z"})]
