"""The change calendar's data: which days a month or week shows, and the changes and freeze
periods that fall on each of them, in the viewer's time zone.

Two queries whatever the number of changes: the changes overlapping the shown range
(their services joined in), and the freezes overlapping it. Days are the viewer's local
days, so a window that crosses midnight where the viewer is shows on both days, and a
week that contains a clock change still has seven whole days.
"""

from __future__ import annotations

import calendar as _calendar
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select

from .. import cache
from ..extensions import db
from ..users.models import User
from . import access
from .models import WINDOW_HOLDING, ChangeLabels, ChangeRequest, change_services
from .setup_models import FreezePeriod, Service

VIEWS = ("month", "week")
DAY = timedelta(days=1)
_TICK = timedelta(microseconds=1)
# What the calendar's changes are read from: a write to any of them renews the answer.
# (change_services is written only through a change's `services`, which makes the change
# itself a write to change_requests.)
CHANGE_TABLES = (ChangeRequest.__tablename__, Service.__tablename__)
# A month of a busy estate holds a few hundred windows; beyond this the grid is unreadable
# anyway, and the cap keeps one request from loading the whole table.
MAX_CHANGES = 1000
# A month cell lists this many changes and links the rest to its week, where there is
# room for each: a cell of thirty lines is no longer a calendar.
MONTH_CELL_LIMIT = 6
# The years a calendar may be asked for: far enough for any real plan, near enough that
# stepping a month or a week either way never leaves what `date` can hold.
FIRST_YEAR, LAST_YEAR = 1970, 2999
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True)
class Period:
    view: str
    anchor: date
    start: date  # the first day shown
    end: date  # the day after the last one shown
    prev: date
    next: date
    title: str

    @property
    def days(self) -> list[date]:
        return [self.start + DAY * i for i in range((self.end - self.start).days)]

    @property
    def weeks(self) -> list[list[date]]:
        days = self.days
        return [days[i : i + 7] for i in range(0, len(days), 7)]

    def in_focus(self, day: date) -> bool:
        """Whether `day` belongs to the month shown (the grid pads it to whole weeks)."""
        return self.view == "week" or (day.year, day.month) == (self.anchor.year, self.anchor.month)


@dataclass
class CalendarChange(ChangeLabels):
    """What the calendar shows of a change."""

    id: int
    title: str
    type: str
    status: str
    risk: str
    window_start: datetime
    window_end: datetime
    services: list[str]


@dataclass(frozen=True)
class CalendarFreeze:
    """What the calendar shows of a freeze period."""

    id: int
    reason: str
    starts_at: datetime
    ends_at: datetime


@dataclass(slots=True)
class Placed:
    """One change on one day: where its window starts and ends, seen from that day."""

    change: CalendarChange
    start: datetime  # local
    end: datetime  # local
    starts_today: bool
    ends_today: bool

    @property
    def from_label(self) -> str:
        """When it starts on this day, "…" when it started before."""
        return self.start.strftime("%H:%M") if self.starts_today else "…"

    @property
    def until_label(self) -> str:
        """When it ends on this day, "…" when it runs on."""
        return self.end.strftime("%H:%M") if self.ends_today else "…"


@dataclass(frozen=True)
class FreezeDay:
    freeze: CalendarFreeze
    start: datetime  # local
    end: datetime  # local
    first_day: bool


@dataclass
class Calendar:
    period: Period
    zone: str
    today: date
    changes: list[CalendarChange]
    freezes: list[FreezeDay]
    truncated: bool
    by_day: dict[date, list[Placed]] = field(default_factory=dict)
    freezes_by_day: dict[date, list[FreezeDay]] = field(default_factory=dict)


def zone_of(user: User | Any, default: str) -> str:
    """The viewer's zone, else the portal's, else UTC: a calendar never fails on a zone."""
    for candidate in (getattr(user, "timezone", None), default):
        if candidate:
            try:
                ZoneInfo(candidate)
            except (ZoneInfoNotFoundError, ValueError):
                continue
            return candidate
    return "UTC"


def today_in(zone: str) -> date:
    return datetime.now(UTC).astimezone(ZoneInfo(zone)).date()


def parse_date(text: str | None, fallback: date) -> date:
    """YYYY-MM-DD within the years shown; anything else is `fallback` (never an error)."""
    if not text or not _DATE.fullmatch(text):
        return fallback
    try:
        value = date.fromisoformat(text)
    except ValueError:
        return fallback
    return value if FIRST_YEAR <= value.year <= LAST_YEAR else fallback


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def period_for(view: str | None, anchor: date) -> Period:
    if view == "week":
        start = anchor - DAY * anchor.weekday()
        end = start + DAY * 7
        last = end - DAY
        week = start.isocalendar().week
        span = (
            f"{start.day} – {last.day} {_calendar.month_name[last.month]} {last.year}"
            if start.month == last.month
            else f"{start.day} {_calendar.month_abbr[start.month]} – "
            f"{last.day} {_calendar.month_abbr[last.month]} {last.year}"
        )
        return Period("week", anchor, start, end, start - 7 * DAY, end, f"Week {week}: {span}")
    first = anchor.replace(day=1)
    following = _add_months(first, 1)
    start = first - DAY * first.weekday()
    last = following - DAY
    end = last + DAY * (7 - last.weekday())
    title = f"{_calendar.month_name[first.month]} {first.year}"
    return Period("month", anchor, start, end, _add_months(first, -1), following, title)


def _utc_bound(day: date, tz: ZoneInfo) -> datetime:
    """The stored (naive UTC) moment a local day begins."""
    return datetime.combine(day, time(), tzinfo=tz).astimezone(UTC).replace(tzinfo=None)


def _local(value: datetime, tz: ZoneInfo) -> datetime:
    return value.replace(tzinfo=UTC).astimezone(tz)


def _days_covered(start: datetime, end: datetime, period: Period) -> Iterable[date]:
    """The local days [start, end) touches, within the period."""
    # Half-open: a window ending at midnight does not reach into the next day.
    return _days_between(start.date(), _last_day(end), period)


def _last_day(end: datetime) -> date:
    return (end - _TICK).date()


def _days_between(first: date, last: date, period: Period) -> Iterable[date]:
    day, last = max(first, period.start), min(last, period.end - DAY)
    while day <= last:
        yield day
        day += DAY


def _change_rows(user: User, start: datetime, end: datetime) -> dict[str, Any]:
    """The query behind `changes_in`, as plain JSON values for the shared cache.

    Plain rows, not ORM objects: a month holds hundreds of changes and the calendar shows
    a handful of their columns, so building full entities would be most of its cost."""
    wanted = (
        select(ChangeRequest.id)
        .where(
            ChangeRequest.status.in_(WINDOW_HOLDING),
            ChangeRequest.window_start < end,
            ChangeRequest.window_end > start,
        )
        .order_by(ChangeRequest.window_start, ChangeRequest.id)
        .limit(MAX_CHANGES + 1)
    )
    wanted = access.visible(wanted, user).subquery()
    stmt = (
        select(
            ChangeRequest.id,
            ChangeRequest.title,
            ChangeRequest.type,
            ChangeRequest.status,
            ChangeRequest.risk,
            ChangeRequest.window_start,
            ChangeRequest.window_end,
            Service.name,
        )
        .join(wanted, wanted.c.id == ChangeRequest.id)
        .outerjoin(change_services, change_services.c.change_id == ChangeRequest.id)
        .outerjoin(Service, Service.id == change_services.c.service_id)
        .order_by(ChangeRequest.window_start, ChangeRequest.id, Service.name)
    )
    found: dict[int, list[Any]] = {}
    for row in db.session.execute(stmt):
        change = found.get(row.id)
        if change is None:
            change = found[row.id] = [
                *row[:5],
                row.window_start.isoformat(),
                row.window_end.isoformat(),
                [],
            ]
        if row.name is not None:
            change[7].append(row.name)
    rows = list(found.values())
    return {"rows": rows[:MAX_CHANGES], "truncated": len(rows) > MAX_CHANGES}


def changes_in(user: User, start: datetime, end: datetime) -> tuple[list[CalendarChange], bool]:
    """The changes holding a window that overlaps [start, end) (naive UTC) that `user` may
    see, with their services' names; and whether there were more than MAX_CHANGES.

    Everyone who sees every change, and opens the same month, asks the same question: the
    answer is shared (portal/cache.py) until a change, a service or a link between them is
    written, so a busy calendar mostly reads it from the cache."""
    scope = "all" if access.sees_all(user) else f"user:{user.id}"
    found = cache.shared(
        CHANGE_TABLES,
        f"calendar:{scope}:{start.isoformat()}:{end.isoformat()}",
        lambda: _change_rows(user, start, end),
    )
    changes = [
        CalendarChange(
            id_,
            title,
            type_,
            status,
            risk,
            datetime.fromisoformat(window_start),
            datetime.fromisoformat(window_end),
            services,
        )
        for id_, title, type_, status, risk, window_start, window_end, services in found["rows"]
    ]
    return changes, found["truncated"]


def _freeze_rows(start: datetime, end: datetime) -> list[list[Any]]:
    stmt = (
        select(FreezePeriod.id, FreezePeriod.reason, FreezePeriod.starts_at, FreezePeriod.ends_at)
        .where(FreezePeriod.starts_at < end, FreezePeriod.ends_at > start)
        .order_by(FreezePeriod.starts_at, FreezePeriod.id)
    )
    return [
        [id_, reason, starts_at.isoformat(), ends_at.isoformat()]
        for id_, reason, starts_at, ends_at in db.session.execute(stmt)
    ]


def freezes_in(start: datetime, end: datetime) -> list[CalendarFreeze]:
    """The freeze periods overlapping [start, end), shared until a freeze is written."""
    rows = cache.shared(
        FreezePeriod.__tablename__,
        f"calendar:{start.isoformat()}:{end.isoformat()}",
        lambda: _freeze_rows(start, end),
    )
    return [
        CalendarFreeze(id_, reason, datetime.fromisoformat(starts), datetime.fromisoformat(ends))
        for id_, reason, starts, ends in rows
    ]


def build(user: User, period: Period, zone: str, today: date) -> Calendar:
    tz = ZoneInfo(zone)
    start, end = _utc_bound(period.start, tz), _utc_bound(period.end, tz)
    changes, truncated = changes_in(user, start, end)
    result = Calendar(period, zone, today, changes, [], truncated)
    by_day = result.by_day
    for change in changes:
        local_start, local_end = _local(change.window_start, tz), _local(change.window_end, tz)
        first_day, last_day = local_start.date(), _last_day(local_end)
        for day in _days_between(first_day, last_day, period):
            placed = Placed(change, local_start, local_end, day == first_day, day == last_day)
            if day in by_day:
                by_day[day].append(placed)
            else:
                by_day[day] = [placed]
    for freeze in freezes_in(start, end):
        local_start, local_end = _local(freeze.starts_at, tz), _local(freeze.ends_at, tz)
        days = list(_days_covered(local_start, local_end, period))
        result.freezes.append(FreezeDay(freeze, local_start, local_end, True))
        for index, day in enumerate(days):
            # The reason is written once per week row (and on the first day), shaded elsewhere.
            first = index == 0 or day.weekday() == 0
            result.freezes_by_day.setdefault(day, []).append(
                FreezeDay(freeze, local_start, local_end, first)
            )
    return result
