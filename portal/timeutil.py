"""Times are stored as naive UTC (the same on SQLite and PostgreSQL) and shown in a zone."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo


def utcnow() -> datetime:
    """Now, as the naive UTC datetime every table stores."""
    return datetime.now(UTC).replace(tzinfo=None)


def to_zone(value: datetime | None, zone: str) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC).astimezone(ZoneInfo(zone))


def iso_utc(value: datetime) -> str:
    """The canonical text of a stored time: ISO 8601, UTC, microseconds, `Z`."""
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
