"""The monthly operations report's figures: each one SQL aggregate (or a short list the
database sorts and cuts), for one calendar month in the reader's time zone and the
month before it. The layout (monthly_pdf.py) only reads what is gathered here.

The service-desk charts come from `desk_figures` for the same period, so the PDF and the
service-desk report page give the same numbers for the same month.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import String, and_, case, cast, exists, func, or_, select
from sqlalchemy.sql.elements import ColumnElement

from ..audits.models import AuditEvent
from ..changes.models import ChangeHistory, ChangeRequest
from ..extensions import db
from ..tickets.extra_models import ActionItem, IncidentReview
from ..tickets.incidents import MAJOR
from ..tickets.models import SEVERITY, Ticket
from ..users.models import User
from . import desk_figures, rollups
from .figures import count_if, elapsed_seconds
from .period import MAX_YEAR, MIN_YEAR, ReportPeriod, month_start, next_month
from .rollup_models import TicketDayCount

MONTH = re.compile(r"(\d{4})-(\d{2})")
BREACHED_LIMIT = 20
INCIDENT_LIMIT = 50
ACCESS_LIMIT = 100
FINISHED = ("completed", "failed", "closed")
# The audit actions (portal/users/services.py) that grant, change or end someone's access.
ACCESS_ACTIONS = {
    "invitation.sent": "Invited",
    "invitation.accepted": "Joined",
    "user.created": "Account created",
    "user.role_changed": "Role changed",
    "user.deactivated": "Deactivated",
    "user.reactivated": "Reactivated",
}


def parse_month(text: str, today: date) -> date | str:
    """The first day of the month `YYYY-MM`, or a message saying what is wrong with it."""
    text = (text or "").strip()[:20]
    match = MONTH.fullmatch(text)
    if not match:
        return f"“{text}” is not a month in the form YYYY-MM." if text else "Choose a month."
    year, month = int(match[1]), int(match[2])
    if not MIN_YEAR <= year <= MAX_YEAR:
        return f"The year must fall between {MIN_YEAR} and {MAX_YEAR}."
    if not 1 <= month <= 12:
        return f"There is no month {month:02d}; months run from 01 to 12."
    first = date(year, month, 1)
    if first > month_start(today):
        return f"{text} has not started yet."
    return first


def month_period(first: date, zone: str) -> ReportPeriod:
    """The whole month `first` falls in, as local days in `zone`."""
    last = next_month(first) - timedelta(days=1)
    return ReportPeriod(period="custom", start=first, end=last, zone=zone)


def previous_month(first: date) -> date:
    return month_start(first - timedelta(days=1))


def _within(column: Any, period: ReportPeriod) -> ColumnElement[bool]:
    return and_(column >= period.utc_start, column < period.utc_end)


# -- key figures -------------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyFigures:
    created: int
    resolved: int
    backlog: int
    response_met: float | None
    resolution_met: float | None
    median_response_min: float | None
    median_resolution_min: float | None
    incidents: int
    changes_completed: int
    changes_failed: int


KEY_LABELS = (
    ("created", "Tickets created", ""),
    ("resolved", "Tickets resolved", ""),
    ("backlog", "Backlog at month end", ""),
    ("response_met", "Response SLA met", "%"),
    ("resolution_met", "Resolution SLA met", "%"),
    ("median_response_min", "Median business time to first response", " min"),
    ("median_resolution_min", "Median business time to resolution", " min"),
    ("incidents", "Incidents", ""),
    ("changes_completed", "Changes completed", ""),
    ("changes_failed", "Changes failed", ""),
)


def _ticket_totals(period: ReportPeriod) -> tuple[int, ...]:
    created, resolved = _within(Ticket.created_at, period), _within(Ticket.resolved_at, period)
    decided = desk_figures.DECIDED
    stmt = select(
        count_if(created),
        count_if(resolved),
        count_if(and_(created, Ticket.type == "incident")),
        count_if(and_(created, Ticket.response_state == "met")),
        count_if(and_(created, Ticket.response_state.in_(decided))),
        count_if(and_(resolved, Ticket.resolution_state == "met")),
        count_if(and_(resolved, Ticket.resolution_state.in_(decided))),
    ).where(or_(created, resolved))
    return tuple(int(n) for n in db.session.execute(stmt).one())


def backlog_at(moment: datetime) -> int:
    """Tickets open at `moment`: created before it, neither resolved nor closed by then.
    A ticket reopened later and not yet resolved again counts as open since its creation.

    The whole UTC days before `moment`'s own day are summed from the daily counts the
    services keep (rollups.py) rather than counted over the whole history; the part of
    that day up to `moment` is counted from the tickets it concerns."""
    day = moment.date()
    counts = TicketDayCount
    before = select(func.coalesce(func.sum(counts.created) - func.sum(counts.ended), 0))
    backlog = int(db.session.scalar(before.where(counts.day < day)) or 0)
    day_start = datetime.combine(day, time())
    if moment > day_start:
        backlog += _opened_net(day_start, moment)
    return backlog


def _opened_net(start: datetime, end: datetime) -> int:
    """Tickets created in [start, end) less those that ended in it (rollups.ended_at):
    what the backlog grew by. Only tickets created, resolved or closed in the range can
    count, so the query reads those three ranges of the time columns."""
    ended = rollups.ended_expression()
    created_in, ended_in = _between(Ticket.created_at, start, end), _between(ended, start, end)
    stmt = select(count_if(created_in), count_if(ended_in)).where(
        or_(
            created_in,
            _between(Ticket.resolved_at, start, end),
            _between(Ticket.closed_at, start, end),
        )
    )
    created, ended_count = db.session.execute(stmt).one()
    return int(created or 0) - int(ended_count or 0)


def _between(column: Any, start: datetime, end: datetime) -> ColumnElement[bool]:
    return and_(column >= start, column < end)


def _failed_ever() -> ColumnElement[bool]:
    """A closed change keeps no status of how it ended; its history does."""
    return exists().where(
        ChangeHistory.change_id == ChangeRequest.id,
        ChangeHistory.field == "status",
        ChangeHistory.new_value == "failed",
    )


def _outcome() -> ColumnElement[str]:
    return case(
        (ChangeRequest.status == "failed", "failed"),
        (ChangeRequest.status == "completed", "completed"),
        (_failed_ever(), "failed"),
        else_="completed",
    )


def _finished_in(period: ReportPeriod) -> list[ColumnElement[bool]]:
    return [ChangeRequest.status.in_(FINISHED), _within(ChangeRequest.finished_at, period)]


def key_figures(period: ReportPeriod) -> KeyFigures:
    created, resolved, incidents, rm, rd, sm, sd = _ticket_totals(period)
    times = {row[0]: row[2] for row in desk_figures.business_times(period).rows}
    outcome = _outcome().label("outcome")
    finished = select(outcome).where(*_finished_in(period)).subquery()
    grouped = select(finished.c.outcome, func.count()).group_by(finished.c.outcome)
    changes = {outcome: int(n) for outcome, n in db.session.execute(grouped)}
    return KeyFigures(
        created=created,
        resolved=resolved,
        backlog=backlog_at(period.utc_end),
        response_met=desk_figures.percent(rm, rd),
        resolution_met=desk_figures.percent(sm, sd),
        median_response_min=times.get("First response"),
        median_resolution_min=times.get("Resolution"),
        incidents=incidents,
        changes_completed=int(changes.get("completed", 0)),
        changes_failed=int(changes.get("failed", 0)),
    )


# -- lists ------------------------------------------------------------------------------------


def breached_tickets(period: ReportPeriod, now: datetime) -> list[dict[str, Any]]:
    """Tickets whose resolution target fell due in the month and was breached, longest
    overrun first: resolved_at − due, or now − due for one still open."""
    ended = func.coalesce(Ticket.resolved_at, now)
    overrun = elapsed_seconds(ended, Ticket.resolution_due_at, db.session.get_bind().dialect.name)
    stmt = (
        select(
            Ticket.id,
            Ticket.subject,
            Ticket.priority,
            Ticket.status,
            Ticket.resolution_due_at,
            Ticket.resolved_at,
            overrun.label("overrun"),
        )
        .where(Ticket.resolution_state == "breached", _within(Ticket.resolution_due_at, period))
        .order_by(overrun.desc(), Ticket.id)
        .limit(BREACHED_LIMIT)
    )
    return [dict(row._mapping) for row in db.session.execute(stmt)]


def _review_status() -> ColumnElement[str]:
    items = (
        select(func.count(ActionItem.id))
        .where(ActionItem.review_id == IncidentReview.id)
        .scalar_subquery()
    )
    complete = and_(
        func.trim(IncidentReview.timeline) != "",
        func.trim(IncidentReview.root_cause) != "",
        items > 0,
    )
    return case(
        (Ticket.priority.not_in(MAJOR), "not needed"),
        (IncidentReview.id.is_(None), "missing"),
        (complete, "complete"),
        else_="incomplete",
    )


def incidents(period: ReportPeriod) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """The month's incidents (most severe first, at most INCIDENT_LIMIT) and how many
    there are per review status."""
    status = _review_status().label("review")
    base = (
        select(Ticket.id, Ticket.subject, Ticket.priority, Ticket.status, Ticket.created_at)
        .add_columns(Ticket.resolved_at, status)
        .outerjoin(IncidentReview, IncidentReview.ticket_id == Ticket.id)
        .where(Ticket.type == "incident", _within(Ticket.created_at, period))
    )
    rank = case({p: i for i, p in enumerate(SEVERITY)}, value=Ticket.priority, else_=9)
    rows = db.session.execute(base.order_by(rank, Ticket.created_at).limit(INCIDENT_LIMIT))
    counted = base.subquery()
    counts = db.session.execute(
        select(counted.c.review, func.count()).group_by(counted.c.review)
    ).all()
    return [dict(row._mapping) for row in rows], {k: int(n) for k, n in counts}


def change_outcomes(period: ReportPeriod) -> list[tuple[str, str, int, int]]:
    """Changes finished in the month, by type and risk: (type, risk, completed, failed)."""
    finished = (
        select(ChangeRequest.type, ChangeRequest.risk, _outcome().label("outcome"))
        .where(*_finished_in(period))
        .subquery()
    )
    stmt = (
        select(
            finished.c.type,
            finished.c.risk,
            count_if(finished.c.outcome == "completed"),
            count_if(finished.c.outcome == "failed"),
        )
        .group_by(finished.c.type, finished.c.risk)
        .order_by(finished.c.type, finished.c.risk)
    )
    return [(t, r, int(c), int(f)) for t, r, c, f in db.session.execute(stmt)]


def access_counts(period: ReportPeriod) -> dict[str, int]:
    stmt = (
        select(AuditEvent.action, func.count())
        .where(AuditEvent.action.in_(ACCESS_ACTIONS), _within(AuditEvent.created_at, period))
        .group_by(AuditEvent.action)
    )
    return {action: int(n) for action, n in db.session.execute(stmt)}


def access_changes(period: ReportPeriod) -> list[dict[str, Any]]:
    """The month's access events, oldest first, with the account they concern."""
    target = select(User.email).where(
        AuditEvent.target_type == "user", cast(User.id, String) == AuditEvent.target_id
    )
    stmt = (
        select(
            AuditEvent.created_at,
            AuditEvent.action,
            AuditEvent.actor_label,
            AuditEvent.target_type,
            AuditEvent.data,
            target.scalar_subquery().label("target_email"),
        )
        .where(AuditEvent.action.in_(ACCESS_ACTIONS), _within(AuditEvent.created_at, period))
        .order_by(AuditEvent.id)
        .limit(ACCESS_LIMIT)
    )
    return [dict(row._mapping) for row in db.session.execute(stmt)]
