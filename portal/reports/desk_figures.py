"""The service-desk report's figures: each one SQL query of aggregates (the database
counts, Python only reads the few grouped rows back) turned into a `Figure`: a table
that the page, its chart and its CSV all read, so they can never disagree.

A figure's `links` point at the ticket list filtered to exactly the tickets a cell
counts, only where the list's filters (status, priority, type, team, assignee) can say
it; where they cannot (a date range, an SLA clock, a history event), `unlinked` says so.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import DateTime, Integer, and_, case, distinct, func, literal, or_, select
from sqlalchemy.sql.elements import ColumnElement

from ..extensions import db
from ..tickets.models import OPEN_STATUSES, Ticket, TicketChange
from ..tickets.setup_models import LEVELS, PRIORITIES, Team
from ..users.models import User
from .figures import (
    NOT_LISTABLE,
    Figure,
    count_if,
    minutes,
    percent,
    percentile_row,
)
from .period import ReportPeriod, month_start, next_month

AGE_BUCKETS = ("< 1 day", "1–3 days", "3–7 days", "7–30 days", "> 30 days")
AGE_LIMITS_DAYS = (1, 3, 7, 30)
DECIDED = ("met", "breached")
CLOSED_STATUSES = ("resolved", "closed")


def _filters(period: ReportPeriod) -> list[ColumnElement[bool]]:
    conditions = []
    if period.team:
        conditions.append(Ticket.team_id == period.team)
    if period.priority:
        conditions.append(Ticket.priority == period.priority)
    if period.type:
        conditions.append(Ticket.type == period.type)
    return conditions


def _within(column: Any, period: ReportPeriod) -> ColumnElement[bool]:
    return and_(column >= period.utc_start, column < period.utc_end)


def created_and_resolved(period: ReportPeriod) -> Figure:
    """One row per day (or week): a union of the buckets' UTC bounds, each counted by two
    correlated subqueries that use the created_at index."""
    parts = [
        select(
            literal(i, Integer).label("i"),
            literal(lo, DateTime).label("lo"),
            literal(hi, DateTime).label("hi"),
        )
        for i, (_, lo, hi) in enumerate(period.buckets())
    ]
    buckets = parts[0].union_all(*parts[1:]).cte("buckets")
    conditions = _filters(period)

    def counted(column: Any) -> Any:
        inside = and_(column >= buckets.c.lo, column < buckets.c.hi)
        return select(func.count()).where(inside, *conditions).scalar_subquery()

    stmt = select(buckets.c.i, counted(Ticket.created_at), counted(Ticket.resolved_at))
    counts = {i: (c, r) for i, c, r in db.session.execute(stmt.order_by(buckets.c.i))}
    unit = "Week from" if period.weekly else "Day"
    rows = [
        (day.isoformat(), *counts.get(i, (0, 0))) for i, (day, _, _) in enumerate(period.buckets())
    ]
    return Figure(
        key="created_resolved",
        title="Tickets created and resolved",
        definition=(
            "Per day of the period (per week when it is longer than 62 days), in your time "
            "zone: tickets created that day, and tickets whose resolution time falls on that "
            "day (a ticket reopened and not yet resolved again is not counted as resolved)."
        ),
        header=(unit, "Created", "Resolved"),
        rows=rows,
        unlinked=NOT_LISTABLE.format("creation or resolution date"),
        chart=(0, (1, 2), False),
    )


def backlog(period: ReportPeriod, now: datetime) -> Figure:
    """Open tickets now, by age and priority (the period does not apply: it is a snapshot)."""
    age = case(
        *(
            (Ticket.created_at > now - timedelta(days=days), index)
            for index, days in enumerate(AGE_LIMITS_DAYS)
        ),
        else_=len(AGE_LIMITS_DAYS),
    )
    # Grouped from a subquery: PostgreSQL would not match the CASE's parameters in the
    # SELECT list to the same CASE in GROUP BY.
    open_now = (
        select(age.label("bucket"), Ticket.priority.label("priority"))
        .where(Ticket.status.in_(OPEN_STATUSES), *_filters(period))
        .subquery()
    )
    stmt = select(open_now.c.priority, open_now.c.bucket, func.count()).group_by(
        open_now.c.priority, open_now.c.bucket
    )
    counts = {(p, b): n for p, b, n in db.session.execute(stmt)}
    rows, links = [], {}
    for priority in PRIORITIES:
        if period.priority and priority != period.priority:
            continue
        cells = [counts.get((priority, b), 0) for b in range(len(AGE_BUCKETS))]
        links[len(rows), len(AGE_BUCKETS) + 1] = {
            **period.filter_args,
            "status": "open",
            "priority": priority,
        }
        rows.append((priority, *cells, sum(cells)))
    totals = [sum(row[i] for row in rows) for i in range(1, len(AGE_BUCKETS) + 2)]
    links[len(rows), len(AGE_BUCKETS) + 1] = {**period.filter_args, "status": "open"}
    rows.append(("All", *totals))
    return Figure(
        key="backlog",
        title="Backlog now by age and priority",
        definition=(
            "Tickets open right now (new, assigned, in progress or pending), by how long ago "
            "they were created and by their current priority. The period does not apply; "
            "team and type filters do."
        ),
        header=("Priority", *AGE_BUCKETS, "Total"),
        rows=rows,
        links=links,
        unlinked="Totals link to the ticket list; it cannot filter by age, so the age "
        "columns are not linked.",
        chart=(0, tuple(range(1, len(AGE_BUCKETS) + 1)), True),
        total_row=True,
    )


def _sla_by(dimension: str, key: Any, period: ReportPeriod) -> Any:
    created, resolved = _within(Ticket.created_at, period), _within(Ticket.resolved_at, period)
    return (
        select(
            literal(dimension).label("dimension"),
            key.label("name"),
            count_if(and_(created, Ticket.response_state == "met")),
            count_if(and_(created, Ticket.response_state.in_(DECIDED))),
            count_if(and_(resolved, Ticket.resolution_state == "met")),
            count_if(and_(resolved, Ticket.resolution_state.in_(DECIDED))),
        )
        .outerjoin(Team, Team.id == Ticket.team_id)
        .where(or_(created, resolved), *_filters(period))
        .group_by(key)
    )


def _months(period: ReportPeriod) -> list[tuple[str, datetime, datetime]]:
    """The calendar months the period touches, in the viewer's zone, each cut to the
    period: (YYYY-MM, UTC start, UTC end)."""
    out = []
    first = month_start(period.start)
    while first <= period.end:
        after = next_month(first)
        lo, hi = max(first, period.start), min(after, period.end + timedelta(days=1))
        out.append((first.strftime("%Y-%m"), period.utc(lo), period.utc(hi)))
        first = after
    return out


def _sla_by_month(period: ReportPeriod) -> Any:
    """Response figures by the month a ticket was created, resolution figures by the
    month it was resolved: two grouped range joins on the two time indexes, in the
    columns of `_sla_by` (each part fills its own two, zeros in the other's)."""
    parts = [
        select(
            literal(name).label("name"),
            literal(lo, DateTime).label("lo"),
            literal(hi, DateTime).label("hi"),
        )
        for name, lo, hi in _months(period)
    ]
    months = parts[0].union_all(*parts[1:]).cte("months")
    none = literal(0, Integer)

    def counted(column: Any, state: Any, response: bool) -> Any:
        met, decided = count_if(state == "met"), count_if(state.in_(DECIDED))
        figures = (met, decided, none, none) if response else (none, none, met, decided)
        return (
            select(literal("month").label("dimension"), months.c.name, *figures)
            .join(Ticket, and_(column >= months.c.lo, column < months.c.hi))
            .where(*_filters(period))
            .group_by(months.c.name)
        )

    return counted(Ticket.created_at, Ticket.response_state, True), counted(
        Ticket.resolved_at, Ticket.resolution_state, False
    )


def sla_compliance(period: ReportPeriod) -> Figure:
    # A team's name is unique, so grouping by it groups by team.
    stmt = _sla_by("priority", Ticket.priority, period).union_all(
        _sla_by("team", Team.name, period), *_sla_by_month(period)
    )
    found: list[tuple[Any, ...]] = []
    by_month = {name: [0, 0, 0, 0] for name, _, _ in _months(period)}
    for dim, name, *counts in db.session.execute(stmt):
        if dim == "month":
            by_month[name] = [a + b for a, b in zip(by_month[name], counts, strict=True)]
        else:
            found.append((dim, name, *counts))
    rank = {p: i for i, p in enumerate(PRIORITIES)}
    found.sort(key=lambda r: (r[0] != "priority", rank.get(r[1], 0), r[1] or ""))
    found += [("month", name, *counts) for name, counts in by_month.items()]
    rows = [
        (dim.capitalize(), name or "(no team)", rm, rd, percent(rm, rd), sm, sd, percent(sm, sd))
        for dim, name, rm, rd, sm, sd in found
    ]
    return Figure(
        key="sla",
        title="SLA compliance",
        definition=(
            "First response: tickets created in the period whose response target is decided "
            "(met, or breached, even if not yet answered); met % = met ÷ decided. "
            "Resolution: tickets resolved in the period; met % = resolved within the target "
            "÷ resolved. Targets count business time on the policy's calendar, pauses "
            "excluded. By the ticket's current priority and team, and by month in your time "
            "zone (the month a ticket was created for response, resolved for resolution)."
        ),
        header=(
            "By",
            "Group",
            "Response met",
            "Response decided",
            "Response met %",
            "Resolution met",
            "Resolved",
            "Resolution met %",
        ),
        rows=rows,
        unlinked=NOT_LISTABLE.format("period or SLA clock"),
        chart=(1, (4, 7), False),
    )


def business_times(period: ReportPeriod) -> Figure:
    dialect = db.session.get_bind().dialect.name
    filters = _filters(period)
    stmt = percentile_row(
        "First response",
        Ticket.response_seconds,
        [_within(Ticket.created_at, period), *filters],
        dialect,
    ).union_all(
        percentile_row(
            "Resolution",
            Ticket.resolution_seconds,
            [_within(Ticket.resolved_at, period), *filters],
            dialect,
        )
    )
    rows = [
        (label, n, minutes(p50), minutes(p90)) for label, n, p50, p90 in db.session.execute(stmt)
    ]
    rows.sort(key=lambda r: r[0] != "First response")
    return Figure(
        key="business_times",
        title="Business time to first response and to resolution",
        definition=(
            "Business minutes on the SLA calendar, time spent pending excluded. First "
            "response: tickets created in the period that have had one. Resolution: tickets "
            "resolved in the period. Median and 90th percentile interpolate between the two "
            "nearest tickets (PostgreSQL's percentile_cont)."
        ),
        header=("Clock", "Tickets", "Median (min)", "90th percentile (min)"),
        rows=rows,
        unlinked=NOT_LISTABLE.format("period"),
        chart=(0, (2, 3), False),
    )


def workload(period: ReportPeriod) -> Figure:
    is_open, resolved = Ticket.status.in_(OPEN_STATUSES), _within(Ticket.resolved_at, period)
    stmt = (
        select(User.id, User.name, count_if(is_open), count_if(resolved))
        .join(User, User.id == Ticket.assignee_id)
        .where(or_(is_open, resolved), *_filters(period))
        .group_by(User.id, User.name)
        .order_by(User.name, User.id)
    )
    rows, links = [], {}
    for user_id, name, open_now, resolved_count in db.session.execute(stmt):
        links[len(rows), 1] = {**period.filter_args, "status": "open", "assignee": user_id}
        rows.append((name, open_now, resolved_count))
    return Figure(
        key="workload",
        title="Agent workload",
        definition=(
            "Per assignee: tickets assigned to them and open now, and tickets assigned to "
            "them whose resolution time falls in the period."
        ),
        header=("Agent", "Open assigned now", "Resolved in period"),
        rows=rows,
        links=links,
        unlinked="Open counts link to the ticket list; it cannot filter by resolution "
        "date, so resolved counts are not linked.",
        chart=(0, (1, 2), False),
    )


def escalations(period: ReportPeriod) -> Figure:
    stmt = (
        select(TicketChange.new_value, func.count(), func.count(distinct(TicketChange.ticket_id)))
        .join(Ticket, Ticket.id == TicketChange.ticket_id)
        .where(
            TicketChange.field == "level",
            _within(TicketChange.created_at, period),
            *_filters(period),
        )
        .group_by(TicketChange.new_value)
    )
    counts = {level: (n, tickets) for level, n, tickets in db.session.execute(stmt)}
    return Figure(
        key="escalations",
        title="Escalations by level",
        definition=(
            "Escalations made in the period, by the level the ticket was escalated to, and "
            "how many tickets they concern."
        ),
        header=("Level", "Escalations", "Tickets"),
        rows=[(level, *counts.get(level, (0, 0))) for level in LEVELS[1:]],
        unlinked=NOT_LISTABLE.format("escalation"),
    )


def reopen_rate(period: ReportPeriod) -> Figure:
    reopened = and_(
        TicketChange.old_value.in_(CLOSED_STATUSES), TicketChange.new_value.in_(OPEN_STATUSES)
    )
    stmt = (
        select(
            func.count(distinct(case((reopened, TicketChange.ticket_id)))),
            func.count(
                distinct(case((TicketChange.new_value == "resolved", TicketChange.ticket_id)))
            ),
        )
        .join(Ticket, Ticket.id == TicketChange.ticket_id)
        .where(
            TicketChange.field == "status",
            _within(TicketChange.created_at, period),
            *_filters(period),
        )
    )
    reopened_count, resolved_count = db.session.execute(stmt).one()
    return Figure(
        key="reopen",
        title="Reopen rate",
        definition=(
            "Tickets whose status went from resolved or closed back to an open status in "
            "the period, ÷ tickets that were resolved in the period (each ticket counted "
            "once however often it moved)."
        ),
        header=("Reopened", "Resolved", "Reopen rate %"),
        rows=[(reopened_count, resolved_count, percent(reopened_count, resolved_count))],
        unlinked=NOT_LISTABLE.format("status history"),
    )


# What the figures are counted from: a committed write to any of them recounts them.
COUNTED_FROM = ("tickets", "ticket_changes", "users", "teams")


def desk_figures(period: ReportPeriod, now: datetime) -> list[Figure]:
    """Every figure of the report, in page order: one query each, or none while another
    request's answer to the same question is still current (see figure_cache)."""
    from .figure_cache import shared_figures

    def compute() -> list[Figure]:
        return [
            created_and_resolved(period),
            backlog(period, now),
            sla_compliance(period),
            business_times(period),
            workload(period),
            escalations(period),
            reopen_rate(period),
        ]

    return shared_figures("service-desk", period, COUNTED_FROM, compute)
