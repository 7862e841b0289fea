"""The incident report's figures: tickets of type incident, their priority read as a
severity (critical P0 … low P3). Like the service-desk report, each figure is one SQL
query of aggregates turned into a `Figure` that the page, its chart and its CSV share.

The ticket list filters by type, priority, team and status but not by date, review or
action item, so only the snapshot of open incidents links to it; every other figure says
why it is not linked.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from sqlalchemy import DateTime, Integer, and_, case, distinct, exists, func, literal, or_, select
from sqlalchemy.sql.elements import ColumnElement

from ..extensions import db
from ..tickets.extra_models import ActionItem, IncidentReview
from ..tickets.models import OPEN_STATUSES, SEVERITY, Ticket
from ..tickets.setup_models import PRIORITIES
from .figures import NOT_LISTABLE, Figure, elapsed_seconds, minutes
from .period import ReportPeriod, month_start, next_month

SEVERITIES = tuple(SEVERITY[p] for p in PRIORITIES)
# The severities whose incidents need a post-incident review.
REVIEWED_PRIORITIES = ("critical", "high")
FINISHED_STATUSES = ("resolved", "closed")


def _incidents(period: ReportPeriod) -> list[ColumnElement[bool]]:
    conditions = [Ticket.type == "incident"]
    if period.team:
        conditions.append(Ticket.team_id == period.team)
    if period.priority:
        conditions.append(Ticket.priority == period.priority)
    return conditions


def _within(column: Any, period: ReportPeriod) -> ColumnElement[bool]:
    return and_(column >= period.utc_start, column < period.utc_end)


def _priorities(period: ReportPeriod, among: tuple[str, ...] = PRIORITIES) -> list[str]:
    return [p for p in among if not period.priority or p == period.priority]


def _label(priority: str) -> str:
    return f"{SEVERITY[priority]} ({priority})"


def months(period: ReportPeriod) -> list[tuple[str, Any, Any]]:
    """The calendar months the period touches, each cut to the period: (YYYY-MM, UTC
    start, UTC end)."""
    out = []
    first = month_start(period.start)
    while first <= period.end:
        following = next_month(first)
        lo = max(first, period.start)
        hi = min(following, period.end + timedelta(days=1))
        out.append((first.strftime("%Y-%m"), period.utc(lo), period.utc(hi)))
        first = following
    return out


def by_severity_per_month(period: ReportPeriod) -> Figure:
    """One grouped count over a union of the months' UTC bounds."""
    spans = months(period)
    parts = [
        select(
            literal(i, Integer).label("i"),
            literal(lo, DateTime).label("lo"),
            literal(hi, DateTime).label("hi"),
        )
        for i, (_, lo, hi) in enumerate(spans)
    ]
    buckets = parts[0].union_all(*parts[1:]).cte("months")
    stmt = (
        select(buckets.c.i, Ticket.priority, func.count())
        .join(Ticket, and_(Ticket.created_at >= buckets.c.lo, Ticket.created_at < buckets.c.hi))
        .where(*_incidents(period))
        .group_by(buckets.c.i, Ticket.priority)
    )
    counts = {(i, p): n for i, p, n in db.session.execute(stmt)}
    rows = []
    for i, (label, _, _) in enumerate(spans):
        cells = [counts.get((i, p), 0) for p in PRIORITIES]
        rows.append((label, *cells, sum(cells)))
    rows.append(("All", *(sum(row[c] for row in rows) for c in range(1, len(PRIORITIES) + 2))))
    return Figure(
        key="by_month",
        title="Incidents by severity per month",
        definition=(
            "Incidents created in the period, by the calendar month (in your time zone) "
            "of their creation and by their current severity: P0 critical, P1 high, "
            "P2 medium, P3 low. The first and last month count only the days inside the "
            "period."
        ),
        header=("Month", *SEVERITIES, "Total"),
        rows=rows,
        unlinked=NOT_LISTABLE.format("creation date"),
        chart=(0, tuple(range(1, len(PRIORITIES) + 1)), True),
        total_row=True,
    )


def mean_times(period: ReportPeriod) -> Figure:
    dialect = db.session.get_bind().dialect.name
    acknowledged = and_(_within(Ticket.created_at, period), Ticket.first_response_at.is_not(None))
    resolved = _within(Ticket.resolved_at, period)
    to_ack = elapsed_seconds(Ticket.first_response_at, Ticket.created_at, dialect)
    to_resolve = elapsed_seconds(Ticket.resolved_at, Ticket.created_at, dialect)
    # Each mean reads only the tickets its own clock picks: avg() skips the NULLs.
    stmt = (
        select(
            Ticket.priority,
            func.count(case((acknowledged, Ticket.id))),
            func.avg(case((acknowledged, to_ack))),
            func.avg(case((acknowledged, Ticket.response_seconds))),
            func.count(case((resolved, Ticket.id))),
            func.avg(case((resolved, to_resolve))),
            func.avg(case((resolved, Ticket.resolution_seconds))),
        )
        .where(or_(acknowledged, resolved), *_incidents(period))
        .group_by(Ticket.priority)
    )
    found = {row[0]: row[1:] for row in db.session.execute(stmt)}
    rows = []
    for priority in _priorities(period):
        acked, ack, ack_business, done, resolve, resolve_business = found.get(
            priority, (0, None, None, 0, None, None)
        )
        rows.append(
            (
                _label(priority),
                acked,
                minutes(ack),
                minutes(ack_business),
                done,
                minutes(resolve),
                minutes(resolve_business),
            )
        )
    return Figure(
        key="mean_times",
        title="Mean time to acknowledge and to resolve by severity",
        definition=(
            "To acknowledge: incidents created in the period that have had a first "
            "response; elapsed minutes from creation to the first response, and business "
            "minutes of the response clock on the SLA calendar (pauses excluded). To "
            "resolve: incidents whose resolution time falls in the period; elapsed minutes "
            "from creation to resolution, and business minutes of the resolution clock. "
            "Means over the incidents counted; a clock without business time (no SLA "
            "policy) is left out of its business mean. By current severity."
        ),
        header=(
            "Severity",
            "Acknowledged",
            "Mean to acknowledge (min)",
            "Mean business to acknowledge (min)",
            "Resolved",
            "Mean to resolve (min)",
            "Mean business to resolve (min)",
        ),
        rows=rows,
        unlinked=NOT_LISTABLE.format("creation or resolution date"),
        chart=(0, (2, 5), False),
    )


def unreviewed(period: ReportPeriod) -> Figure:
    """A snapshot: the reviews missing now, whenever the incident happened."""
    reviewed = exists().where(IncidentReview.ticket_id == Ticket.id)
    stmt = (
        select(Ticket.priority, Ticket.status, func.count())
        .where(
            Ticket.priority.in_(REVIEWED_PRIORITIES),
            Ticket.status.in_(FINISHED_STATUSES),
            ~reviewed,
            *_incidents(period),
        )
        .group_by(Ticket.priority, Ticket.status)
    )
    counts = {(p, s): n for p, s, n in db.session.execute(stmt)}
    rows = []
    for priority in _priorities(period, REVIEWED_PRIORITIES):
        cells = [counts.get((priority, status), 0) for status in FINISHED_STATUSES]
        rows.append((_label(priority), *cells, sum(cells)))
    return Figure(
        key="unreviewed",
        title="P0/P1 incidents without a review",
        definition=(
            "P0 and P1 incidents (by current severity) that are resolved or closed and "
            "have no post-incident review written yet, whenever they happened: the period "
            "does not apply, the team and priority filters do."
        ),
        header=("Severity", "Resolved", "Closed", "Total"),
        rows=rows,
        unlinked=NOT_LISTABLE.format("whether a review exists"),
    )


def overdue_actions(period: ReportPeriod, today: date) -> Figure:
    """A snapshot against `today`, the viewer's date."""
    stmt = (
        select(Ticket.priority, func.count(ActionItem.id), func.count(distinct(Ticket.id)))
        .select_from(ActionItem)
        .join(IncidentReview, IncidentReview.id == ActionItem.review_id)
        .join(Ticket, Ticket.id == IncidentReview.ticket_id)
        .where(ActionItem.done_at.is_(None), ActionItem.due_on < today, *_incidents(period))
        .group_by(Ticket.priority)
    )
    counts = {p: (items, tickets) for p, items, tickets in db.session.execute(stmt)}
    rows = [(_label(p), *counts.get(p, (0, 0))) for p in _priorities(period)]
    return Figure(
        key="overdue_actions",
        title="Review action items overdue",
        definition=(
            f"Action items of post-incident reviews that are not done and were due before "
            f"today ({today.isoformat()}, in your time zone), by the severity of their "
            "incident, and how many incidents they belong to. The period does not apply; "
            "the team and priority filters do."
        ),
        header=("Severity", "Overdue items", "Incidents"),
        rows=rows,
        unlinked=NOT_LISTABLE.format("review action item"),
    )


def open_now(period: ReportPeriod) -> Figure:
    """A snapshot the ticket list can show exactly: each count links to its list."""
    stmt = (
        select(Ticket.priority, func.count())
        .where(Ticket.status.in_(OPEN_STATUSES), *_incidents(period))
        .group_by(Ticket.priority)
    )
    counts = dict(db.session.execute(stmt).all())
    base = {**period.filter_args, "type": "incident", "status": "open"}
    rows, links = [], {}
    for priority in _priorities(period):
        links[len(rows), 1] = {**base, "priority": priority}
        rows.append((_label(priority), counts.get(priority, 0)))
    links[len(rows), 1] = base
    rows.append(("All", sum(row[1] for row in rows)))
    return Figure(
        key="open_now",
        title="Open incidents now by severity",
        definition=(
            "Incidents open right now (new, assigned, in progress or pending) by current "
            "severity. The period does not apply; the team and priority filters do. Each "
            "count links to the ticket list showing exactly those incidents."
        ),
        header=("Severity", "Open now"),
        rows=rows,
        links=links,
        chart=(0, (1,), False),
        total_row=True,
    )


def incident_figures(period: ReportPeriod, today: date) -> list[Figure]:
    """Every figure of the report, in page order: one query each."""
    return [
        by_severity_per_month(period),
        mean_times(period),
        unreviewed(period),
        overdue_actions(period, today),
        open_now(period),
    ]
