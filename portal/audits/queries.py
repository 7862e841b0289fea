"""The audit log's query: filters from the query string, and keyset paging newest first.

The viewer, its htmx fragment and the CSV export all go through `events_query`, so an
export holds exactly the rows the viewer shows. Pages are cut by id (`before` / `after`),
never by OFFSET and never with a count of the table, so the ten-millionth event is as
quick to reach as the first.
"""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import abort
from sqlalchemy import ColumnElement, Select, func, select

from ..extensions import db
from ..query_args import QueryArgs, positive_int
from ..users.models import User
from .models import AuditEvent
from .time_ids import first_id_at

PER_PAGE = 50
# What record() writes: dotted lower-case names (`user.role_changed`), class names.
ACTION_PREFIX = re.compile(r"[a-z0-9_.]{1,64}")
TARGET_TYPE = re.compile(r"[a-z0-9_]{1,40}")
# Earlier or later than this cannot be an event's day, and converting it could overflow.
FIRST_YEAR, LAST_YEAR = 2000, 2999
# Query-string names of the filters (`from` is a Python keyword).
ARG_NAMES = {"actor": "actor", "action": "action", "type": "type", "id": "id", "ip": "ip"}


def _day(value: str, label: str, problems: list[str]) -> date | None:
    if not value:
        return None
    try:
        day = date.fromisoformat(value.strip())
    except ValueError:
        problems.append(f"“{value[:40]}” is not a date for “{label}” (use YYYY-MM-DD).")
        return None
    if not FIRST_YEAR <= day.year <= LAST_YEAR:
        problems.append(f"“{label}” must be a day between {FIRST_YEAR} and {LAST_YEAR}.")
        return None
    return day


def _actor(value: str, problems: list[str]) -> str:
    """A user id, an email (matched case-insensitively) or `system`."""
    value = value.strip().lower()
    if not value or value == "system" or ("@" in value and len(value) <= 254):
        return value
    if positive_int(value) is not None:
        return str(int(value))
    problems.append(f"“{value[:40]}” is not a user id, an email or “system”.")
    return ""


def _ip(value: str, problems: list[str]) -> str:
    value = value.strip()
    if not value:
        return ""
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        problems.append(f"“{value[:45]}” is not an IP address.")
        return ""


def _matching(value: str, pattern: re.Pattern[str], message: str, problems: list[str]) -> str:
    value = value.strip()
    if not value or pattern.fullmatch(value):
        return value
    problems.append(message.format(value=value[:64]))
    return ""


@dataclass(frozen=True)
class AuditFilters(QueryArgs):
    actor: str = ""  # a user id, an email or "system"
    action: str = ""  # a prefix: `user.` or a whole action
    type: str = ""  # the object's type: user, ticket, changerequest, ...
    id: str = ""  # the object's id (text: failed sign-ins name an email)
    ip: str = ""
    day_from: date | None = None  # from this day, in the viewer's zone
    day_to: date | None = None  # to this day, included
    # Not in the query string: the zone the days are read in, and what was dropped.
    zone: str = field(default="UTC", compare=False)
    problems: tuple[str, ...] = field(default=(), compare=False)

    @classmethod
    def from_args(cls, args: Any, zone: str = "UTC") -> AuditFilters:
        """Malformed values are dropped and named in `problems`, never an error."""
        problems: list[str] = []
        day_from = _day(args.get("from", ""), "From", problems)
        day_to = _day(args.get("to", ""), "To", problems)
        if day_from and day_to and day_to < day_from:
            problems.append("The end date is before the start date: the dates are ignored.")
            day_from = day_to = None
        return cls(
            actor=_actor(args.get("actor", ""), problems),
            action=_matching(
                args.get("action", "").lower(),
                ACTION_PREFIX,
                "“{value}” is not an action prefix: use lower-case letters, digits, _ and .",
                problems,
            ),
            type=_matching(
                args.get("type", "").lower(),
                TARGET_TYPE,
                "“{value}” is not an object type.",
                problems,
            ),
            id=args.get("id", "").replace("\x00", "").strip()[:64],
            ip=_ip(args.get("ip", ""), problems),
            day_from=day_from,
            day_to=day_to,
            zone=zone,
            problems=tuple(problems),
        )

    def as_args(self, **changes: Any) -> dict[str, Any]:
        values = {name: getattr(self, name) for name in ARG_NAMES}
        values["from"], values["to"] = self.day_from, self.day_to
        values.update(changes)
        return {
            key: value.isoformat() if isinstance(value, date) else value
            for key, value in values.items()
            if value not in ("", None)
        }

    @property
    def any(self) -> bool:
        return bool(self.as_args())


def _day_start_utc(day: date, zone: str) -> datetime:
    """Midnight of `day` in `zone` as the naive UTC stored (an unknown zone: UTC's day).
    A midnight that a clock change skips is read as the first moment of that day."""
    try:
        tz = ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        tz = ZoneInfo("UTC")
    start = datetime.combine(day, time.min, tzinfo=tz)
    return start.astimezone(UTC).replace(tzinfo=None)


def _actor_clause(actor: str) -> ColumnElement[bool]:
    if actor == "system":
        return AuditEvent.actor_id.is_(None)
    if actor.isdigit():
        return AuditEvent.actor_id == int(actor)
    # One account at most has the email; as a subquery it costs no round trip.
    user_id = select(User.id).where(User.email == actor).limit(1).scalar_subquery()
    return AuditEvent.actor_id == user_id


def events_query(filters: AuditFilters) -> Select[Any]:
    """Every event under `filters`, newest first."""
    conditions: list[ColumnElement[bool]] = []
    if filters.actor:
        conditions.append(_actor_clause(filters.actor))
    if filters.action:
        conditions.append(AuditEvent.action.startswith(filters.action, autoescape=True))
    if filters.type:
        conditions.append(AuditEvent.target_type == filters.type)
    if filters.id:
        conditions.append(AuditEvent.target_id == filters.id)
    if filters.ip:
        conditions.append(AuditEvent.ip == filters.ip)
    if filters.day_from:
        start = _day_start_utc(filters.day_from, filters.zone)
        conditions += [AuditEvent.created_at >= start, AuditEvent.id >= first_id_at(start)]
    if filters.day_to:
        end = _day_start_utc(filters.day_to + timedelta(days=1), filters.zone)
        # No event at or after the end: every id is before it (NULL would match nothing).
        first_after = func.coalesce(first_id_at(end), 2**31)
        conditions += [AuditEvent.created_at < end, AuditEvent.id < first_after]
    return select(AuditEvent).where(*conditions).order_by(AuditEvent.id.desc())


# -- keyset paging ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Cursor:
    """Where a page starts: just older than `before`, or just newer than `after`."""

    before: int | None = None
    after: int | None = None
    problems: tuple[str, ...] = ()

    @classmethod
    def from_args(cls, args: Any) -> Cursor:
        problems: list[str] = []
        found: dict[str, int | None] = {}
        for name in ("before", "after"):
            raw = args.get(name, "")
            found[name] = positive_int(raw)
            if raw and found[name] is None:
                problems.append(f"“{raw[:20]}” is not an event number: showing the newest.")
        if found["before"] and found["after"]:
            found["after"] = None
        return cls(found["before"], found["after"], tuple(problems))


class EventRow(NamedTuple):
    """One line of the viewer: the columns it shows (never the data, which can be long)."""

    id: int
    created_at: datetime
    actor_id: int | None
    actor_label: str
    action: str
    target_type: str | None
    target_id: str | None
    ip: str | None


LIST_COLUMNS = (
    AuditEvent.id,
    AuditEvent.created_at,
    AuditEvent.actor_id,
    AuditEvent.actor_label,
    AuditEvent.action,
    AuditEvent.target_type,
    AuditEvent.target_id,
    AuditEvent.ip,
)


@dataclass
class EventPage:
    items: list[EventRow]
    # The cursor values of the neighbouring pages (None: there is none that way).
    newer: int | None
    older: int | None


def events_page(filters: AuditFilters, cursor: Cursor, per_page: int = PER_PAGE) -> EventPage:
    """One page of events in one query: one row more than the page says whether the
    list goes on in the direction it was read."""
    stmt = events_query(filters).with_only_columns(*LIST_COLUMNS)
    if cursor.after is not None:
        ascending = stmt.where(AuditEvent.id > cursor.after).order_by(None)
        rows = _rows(ascending.order_by(AuditEvent.id.asc()).limit(per_page + 1))
        more_newer = len(rows) > per_page
        items = rows[:per_page][::-1]
        if not items:
            return EventPage([], None, cursor.after + 1)
        return EventPage(items, items[0].id if more_newer else None, items[-1].id)
    if cursor.before is not None:
        stmt = stmt.where(AuditEvent.id < cursor.before)
    rows = _rows(stmt.limit(per_page + 1))
    items = rows[:per_page]
    if not items:
        return EventPage([], cursor.before - 1 if cursor.before else None, None)
    newer = items[0].id if cursor.before is not None else None
    return EventPage(items, newer, items[-1].id if len(rows) > per_page else None)


def _rows(stmt: Select[Any]) -> list[EventRow]:
    return [EventRow(*row) for row in db.session.execute(stmt)]


# -- one event -------------------------------------------------------------------------------

FINGERPRINT = "hmac:"


@dataclass(frozen=True)
class FieldChange:
    name: str
    before: Any
    after: Any

    @property
    def is_secret(self) -> bool:
        """A secret is stored only as its keyed fingerprint: the change shows, not the value."""
        return any(
            isinstance(v, str) and v.startswith(FINGERPRINT) for v in (self.before, self.after)
        )

    @property
    def changed(self) -> bool:
        return self.before != self.after


def field_changes(data: dict[str, Any]) -> list[FieldChange]:
    """The event's before/after values side by side, one line per field named in either."""
    before = data.get("before") if isinstance(data.get("before"), dict) else {}
    after = data.get("after") if isinstance(data.get("after"), dict) else {}
    names = [*after, *(name for name in before if name not in after)]
    return [FieldChange(name, before.get(name), after.get(name)) for name in names]


def other_data(data: dict[str, Any]) -> dict[str, Any]:
    """What else the event carries (a reason, a count, an email typed at sign-in)."""
    skipped = {"before", "after"} if field_changes(data) else set()
    return {key: value for key, value in data.items() if key not in skipped}


def shown_value(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def get_event_or_404(event_id: int) -> AuditEvent:
    event = db.session.get(AuditEvent, event_id) if 0 < event_id < 2**31 else None
    if event is None:
        abort(404)
    return event


def with_zone(filters: AuditFilters, zone: str) -> AuditFilters:
    return replace(filters, zone=zone)
