"""Windows: converting what a person typed into stored UTC, and finding the changes and
freezes a window runs into.

A window is the half-open interval [start, end): a change that ends at 02:00 and one
that starts at 02:00 do not overlap, so back-to-back windows are never a conflict.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from ..errors import Conflict, ServiceError
from ..extensions import db
from .models import WINDOW_HOLDING, ChangeRequest, change_services
from .setup_models import FreezePeriod, Service


def overlaps(start: datetime, end: datetime, other_start: datetime, other_end: datetime) -> bool:
    """Whether [start, end) and [other_start, other_end) share a moment."""
    return start < other_end and other_start < end


def to_utc(value: datetime, zone: str, field: str | None = None) -> datetime:
    """A wall-clock time as someone in `zone` typed it → the naive UTC we store.

    An aware datetime is converted as it is. A time the clocks skip (the hour lost
    when summer time starts) is refused rather than silently moved; a time that
    happens twice (when summer time ends) is read as the first of the two.
    """
    if value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    try:
        tz = ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ServiceError(f"“{zone}” is not a time zone.", field=field) from None
    try:
        utc = value.replace(tzinfo=tz, fold=0).astimezone(UTC)
        back = utc.astimezone(tz).replace(tzinfo=None)
    except OverflowError:  # the first or last day a datetime can hold, moved past its edge
        raise ServiceError(f"{value:%Y-%m-%d} is out of range.", field=field) from None
    if back != value:
        raise ServiceError(
            f"{value:%Y-%m-%d %H:%M} does not exist in {zone}: the clocks skip that hour.",
            field=field,
        )
    return utc.replace(tzinfo=None)


def window_to_utc(start: datetime, end: datetime, zone: str) -> tuple[datetime, datetime]:
    """A window typed in `zone`, as stored UTC; its end must come after its start."""
    start_utc = to_utc(start, zone, "window_start")
    end_utc = to_utc(end, zone, "window_end")
    check_window(start_utc, end_utc)
    return start_utc, end_utc


def check_window(start: datetime, end: datetime) -> None:
    if end <= start:
        raise ServiceError("The window must end after it starts.", field="window_end")


@dataclass(frozen=True)
class Clash:
    """Another change holding an overlapping window on at least one shared service."""

    change: ChangeRequest
    services: list[Service]

    def describe(self) -> str:
        other = self.change
        names = ", ".join(s.name for s in self.services)
        return (
            f"{other.number} ({other.title}), {other.status_label.lower()}, "
            f"{other.window_start:%Y-%m-%d %H:%M}–{other.window_end:%Y-%m-%d %H:%M} UTC, "
            f"on {names}"
        )


def find_clashes(change: ChangeRequest, start: datetime, end: datetime) -> list[Clash]:
    """The changes other than `change` that hold [start, end) on one of its services:
    scheduled, implementing or validating, with an overlapping window."""
    service_ids = {s.id for s in change.services}
    if not service_ids:
        return []
    sharing = (
        select(change_services.c.change_id)
        .where(change_services.c.service_id.in_(service_ids))
        .scalar_subquery()
    )
    others = db.session.scalars(
        select(ChangeRequest)
        .where(
            ChangeRequest.id.in_(sharing),
            ChangeRequest.id != change.id,
            ChangeRequest.status.in_(WINDOW_HOLDING),
            ChangeRequest.window_start < end,
            ChangeRequest.window_end > start,
        )
        .options(selectinload(ChangeRequest.services))
        .order_by(ChangeRequest.window_start, ChangeRequest.id)
    ).all()
    return [Clash(other, [s for s in other.services if s.id in service_ids]) for other in others]


def find_freezes(start: datetime, end: datetime) -> list[FreezePeriod]:
    """The freeze periods [start, end) reaches into."""
    return list(
        db.session.scalars(
            select(FreezePeriod)
            .where(FreezePeriod.starts_at < end, FreezePeriod.ends_at > start)
            .order_by(FreezePeriod.starts_at, FreezePeriod.id)
        )
    )


def describe_freeze(freeze: FreezePeriod) -> str:
    return (
        f"{freeze.starts_at:%Y-%m-%d %H:%M}–{freeze.ends_at:%Y-%m-%d %H:%M} UTC ({freeze.reason})"
    )


class WindowConflict(Conflict):
    """The window overlaps other changes on shared services and nobody acknowledged it
    yet: the page shows `clashes` and asks for an explicit acknowledgement."""

    def __init__(self, clashes: list[Clash]) -> None:
        listed = "; ".join(clash.describe() for clash in clashes)
        super().__init__(
            f"The window overlaps {len(clashes)} other change"
            f"{'' if len(clashes) == 1 else 's'} on shared services: {listed}. "
            "Acknowledge the overlap to schedule it anyway.",
            field="acknowledge_conflicts",
        )
        self.clashes = clashes


class FreezeConflict(Conflict):
    """The window reaches into a freeze and the change is not an emergency."""

    def __init__(self, freezes: list[FreezePeriod]) -> None:
        listed = "; ".join(describe_freeze(f) for f in freezes)
        super().__init__(
            f"The window falls in a change freeze: {listed}. Only emergency changes are "
            "scheduled in a freeze; choose another window.",
            field="window_start",
        )
        self.freezes = freezes
