"""The home page's panels, by role: each a small question answered by one or two
aggregate queries, loaded after the page and refreshed by htmx, so a slow panel never
holds the page back.

- agents: their open tickets by SLA state, the next to breach first;
- approvers: the changes waiting for their vote;
- whoever sees every ticket: the open P0/P1 incidents;
- admins, approvers and auditors (those who run the desk or watch it): SLA compliance
  this week against last week, the backlog trend, this week's changes, running exports.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, case, func, select

from .. import cache
from ..changes import access as change_access
from ..changes import queries as change_queries
from ..changes.models import ChangeRequest
from ..extensions import db
from ..security import Permission, Role, role_has
from ..tickets import access as ticket_access
from ..tickets.models import OPEN_STATUSES, SLA_STATES, Ticket
from ..timeutil import utcnow
from ..users.models import User
from .models import ACTIVE, Export

LIST_LENGTH = 10
TREND_DAYS = 14
WATCHERS = (Role.ADMIN, Role.APPROVER, Role.AUDITOR)


@dataclass(frozen=True)
class Panel:
    name: str
    title: str
    shows_to: Callable[[User], bool]
    compute: Callable[[User], dict[str, Any]]


def _watches(user: User) -> bool:
    return user.role in WATCHERS and role_has(user.role, Permission.REPORTS_RUN)


def _zone(user: User) -> ZoneInfo:
    try:
        return ZoneInfo(user.timezone or "UTC")
    except (KeyError, ValueError):
        return ZoneInfo("UTC")


def local_midnight_utc(day: date, zone: ZoneInfo) -> datetime:
    """The UTC instant a local day starts (naive UTC, as times are stored)."""
    start = datetime.combine(day, time.min, tzinfo=zone)
    return start.astimezone(ZoneInfo("UTC")).replace(tzinfo=None)


def week_start(user: User, weeks_back: int = 0) -> datetime:
    """Monday 00:00 of this week (or `weeks_back` before) in the user's zone, as UTC."""
    zone = _zone(user)
    today = utcnow().replace(tzinfo=ZoneInfo("UTC")).astimezone(zone).date()
    monday = today - timedelta(days=today.weekday() + 7 * weeks_back)
    return local_midnight_utc(monday, zone)


# -- agents -----------------------------------------------------------------------------------


def my_tickets(user: User) -> dict[str, Any]:
    mine = and_(Ticket.assignee_id == user.id, Ticket.status.in_(OPEN_STATUSES))
    counts = dict.fromkeys(SLA_STATES, 0)
    counts.update(
        db.session.execute(
            select(Ticket.sla_state, func.count()).where(mine).group_by(Ticket.sla_state)
        ).all()
    )
    # The next to breach first: those already breached lead, then by the due time.
    next_up = db.session.execute(
        select(
            Ticket.id, Ticket.subject, Ticket.priority, Ticket.sla_state, Ticket.resolution_due_at
        )
        .where(mine)
        .order_by(
            case((Ticket.sla_state == "breached", 0), else_=1),
            Ticket.resolution_due_at.is_(None),
            Ticket.resolution_due_at,
            Ticket.id,
        )
        .limit(LIST_LENGTH)
    ).all()
    return {"counts": counts, "total": sum(counts.values()), "tickets": next_up}


# -- approvers --------------------------------------------------------------------------------


def my_approvals(user: User) -> dict[str, Any]:
    waiting = change_queries.inbox_count(user)
    return {"waiting": waiting, "changes": change_queries.inbox(user, limit=LIST_LENGTH)}


# -- everyone who sees every ticket -----------------------------------------------------------


MAJOR = ("critical", "high")


def major_incidents(user: User) -> dict[str, Any]:
    rows = db.session.execute(
        select(Ticket.id, Ticket.subject, Ticket.priority, Ticket.status, Ticket.created_at)
        .where(
            Ticket.type == "incident",
            Ticket.priority.in_(MAJOR),
            Ticket.status.in_(OPEN_STATUSES),
        )
        .order_by(case({"critical": 0, "high": 1}, value=Ticket.priority), Ticket.id.desc())
        .limit(LIST_LENGTH + 1)
    ).all()
    return {"incidents": rows[:LIST_LENGTH], "more": len(rows) > LIST_LENGTH}


# -- watchers ---------------------------------------------------------------------------------


def _met_share(state: Any, stopped_at: Any, start: datetime, end: datetime) -> Any:
    """Met clocks among those that stopped (met or breached) in [start, end), as counts."""
    in_week = and_(stopped_at >= start, stopped_at < end, state.in_(("met", "breached")))
    return (
        func.sum(case((and_(in_week, state == "met"), 1), else_=0)),
        func.sum(case((in_week, 1), else_=0)),
    )


def _percent(met: int | None, decided: int | None) -> float | None:
    return round(100 * (met or 0) / decided, 1) if decided else None


def sla_week(user: User) -> dict[str, Any]:
    """The same for every watcher in a time zone: shared until a ticket is written."""
    key = f"dashboard:sla_week:{_zone(user)}:{week_start(user).isoformat()}"
    return cache.shared("tickets", key, lambda: _sla_week(user))


def _sla_week(user: User) -> dict[str, Any]:
    this_week, last_week = week_start(user), week_start(user, 1)
    now = utcnow()
    weeks = {"this": (this_week, now), "last": (last_week, this_week)}
    columns = []
    for start, end in weeks.values():
        columns += _met_share(Ticket.response_state, Ticket.first_response_at, start, end)
        columns += _met_share(Ticket.resolution_state, Ticket.resolved_at, start, end)
    recent = (Ticket.first_response_at >= last_week) | (Ticket.resolved_at >= last_week)
    row = db.session.execute(select(*columns).where(recent)).one()
    figures = {}
    for i, name in enumerate(weeks):
        r_met, r_all, s_met, s_all = row[4 * i : 4 * i + 4]
        figures[name] = {
            "response": _percent(r_met, r_all),
            "resolution": _percent(s_met, s_all),
            "decided": (r_all or 0, s_all or 0),
        }
    return {"weeks": figures}


def backlog_trend(user: User) -> dict[str, Any]:
    """Open tickets at the end of each of the last days, worked back from today's backlog:
    backlog at a day's end = open now − filed since + resolved since (a ticket reopened
    and resolved again in between counts once, as the stored resolution time does).
    The same for every watcher in a time zone: shared until a ticket is written."""
    key = f"dashboard:backlog_trend:{_zone(user)}:{week_start(user).isoformat()}"
    return cache.shared("tickets", key, lambda: _backlog_trend(user))


def _backlog_trend(user: User) -> dict[str, Any]:
    zone = _zone(user)
    today = utcnow().replace(tzinfo=ZoneInfo("UTC")).astimezone(zone).date()
    days = [today - timedelta(days=n) for n in range(TREND_DAYS - 1, -1, -1)]
    ends = [local_midnight_utc(day + timedelta(days=1), zone) for day in days]
    is_open = Ticket.status.in_(OPEN_STATUSES)
    columns = [func.sum(case((is_open, 1), else_=0))]
    for end in ends:
        columns.append(func.sum(case((Ticket.created_at >= end, 1), else_=0)))
        columns.append(func.sum(case((Ticket.resolved_at >= end, 1), else_=0)))
    since = ends[0] - timedelta(days=1)
    row = db.session.execute(
        select(*columns).where(
            is_open | (Ticket.created_at >= since) | (Ticket.resolved_at >= since)
        )
    ).one()
    open_now = row[0] or 0
    points = []
    for i, day in enumerate(days):
        filed_since, resolved_since = row[1 + 2 * i] or 0, row[2 + 2 * i] or 0
        points.append((day.isoformat(), max(0, open_now - filed_since + resolved_since)))
    return {"points": points, "open_now": open_now}


WEEK_STATUSES = ("scheduled", "implementing", "validating", "completed", "failed", "closed")


def week_changes(user: User) -> dict[str, Any]:
    start = week_start(user)
    end = start + timedelta(days=7)
    changes = db.session.execute(
        change_access.visible(
            select(
                ChangeRequest.id,
                ChangeRequest.title,
                ChangeRequest.status,
                ChangeRequest.risk,
                ChangeRequest.window_start,
                ChangeRequest.window_end,
            ),
            user,
        )
        .where(
            ChangeRequest.status.in_(WEEK_STATUSES),
            ChangeRequest.window_start < end,
            ChangeRequest.window_end > start,
        )
        .order_by(ChangeRequest.window_start, ChangeRequest.id)
        .limit(LIST_LENGTH * 2)
    ).all()
    return {"changes": changes, "start": start}


def running_exports(user: User) -> dict[str, Any]:
    stmt = select(Export).where(Export.status.in_(ACTIVE)).order_by(Export.created_at)
    if user.role != Role.ADMIN:
        stmt = stmt.where(Export.requested_by_id == user.id)
    return {"exports": db.session.scalars(stmt.limit(LIST_LENGTH)).all()}


PANELS: dict[str, Panel] = {
    panel.name: panel
    for panel in (
        Panel(
            "my_tickets",
            "My open tickets",
            lambda u: role_has(u.role, Permission.TICKETS_WORK),
            my_tickets,
        ),
        Panel("my_approvals", "Waiting for my vote", change_queries.may_vote, my_approvals),
        Panel("major_incidents", "Open P0/P1 incidents", ticket_access.sees_all, major_incidents),
        Panel("sla_week", "SLA compliance", _watches, sla_week),
        Panel("backlog_trend", "Backlog, last two weeks", _watches, backlog_trend),
        Panel("week_changes", "This week's changes", _watches, week_changes),
        Panel("running_exports", "Running exports", _watches, running_exports),
    )
}


def panels_for(user: User) -> list[Panel]:
    return [panel for panel in PANELS.values() if panel.shows_to(user)]
