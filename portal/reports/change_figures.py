"""The change report's figures, each one SQL query of aggregates turned into a `Figure`
that the page, its chart and its CSV share.

Which date a figure's period applies to is part of its definition. Counts of changes
by status, risk, emergency and linked incidents take the changes whose planned window
overlaps the period: that is the date the change list filters by (window_from and
window_to, in the viewer's zone), so those counts link to exactly the changes they
count. Outcomes, decisions and acknowledgements take the moment they happened, which
the list cannot filter by, and say so.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, case, distinct, func, select
from sqlalchemy.sql.elements import ColumnElement

from ..changes.models import (
    STATUS_LABELS,
    STATUSES,
    TYPES,
    ChangeHistory,
    ChangeRequest,
    ConflictAcknowledgement,
    change_tickets,
)
from ..changes.risk import RISKS
from ..extensions import db
from ..tickets.models import Ticket
from .figures import Figure, elapsed_seconds, percent, percentile_row
from .period import ReportPeriod

FINISHED = ("completed", "failed")
# Risk outcomes the change list can show by one status each; the rest are under way.
RISK_OUTCOMES = ("rejected", "completed", "failed", "closed")
NOT_LISTABLE = "The change list cannot filter by {}, so these counts are not linked."


def _typed(period: ReportPeriod) -> list[ColumnElement[bool]]:
    return [ChangeRequest.type == period.type] if period.type else []


def _types(period: ReportPeriod) -> list[str]:
    return [t for t in TYPES if not period.type or t == period.type]


def _in_window(period: ReportPeriod) -> ColumnElement[bool]:
    """The planned window overlaps the period: the change list's window_from/window_to."""
    return and_(
        ChangeRequest.window_end > period.utc_start, ChangeRequest.window_start < period.utc_end
    )


def _within(column: Any, period: ReportPeriod) -> ColumnElement[bool]:
    return and_(column >= period.utc_start, column < period.utc_end)


def _window_args(period: ReportPeriod, **more: Any) -> dict[str, Any]:
    args = {"window_from": period.start.isoformat(), "window_to": period.end.isoformat()}
    if period.type:
        args["type"] = period.type
    return {**args, **more}


WINDOW_BASIS = (
    "Changes whose planned window overlaps the period (ends after its first day begins "
    "and starts before its last day ends, in your time zone); changes without a window "
    "are not counted."
)


def by_status(period: ReportPeriod) -> Figure:
    stmt = (
        select(ChangeRequest.status, ChangeRequest.type, func.count())
        .where(_in_window(period), *_typed(period))
        .group_by(ChangeRequest.status, ChangeRequest.type)
    )
    counts = {(s, t): n for s, t, n in db.session.execute(stmt)}
    types = _types(period)
    rows, links = [], {}
    for status in STATUSES:
        cells = [counts.get((status, t), 0) for t in types]
        for column, type_ in enumerate(types, start=1):
            links[len(rows), column] = _window_args(period, status=status, type=type_)
        links[len(rows), len(types) + 1] = _window_args(period, status=status)
        rows.append((STATUS_LABELS[status], *cells, sum(cells)))
    totals = [sum(row[c] for row in rows) for c in range(1, len(types) + 2)]
    for column, type_ in enumerate(types, start=1):
        links[len(rows), column] = _window_args(period, type=type_)
    links[len(rows), len(types) + 1] = _window_args(period)
    rows.append(("All", *totals))
    return Figure(
        key="by_status",
        title="Changes by status and type",
        definition=WINDOW_BASIS + " By their current status: completed, failed (rolled "
        "back) and closed are the outcomes; a closed change was completed or failed first.",
        header=("Status", *(t.capitalize() for t in types), "Total"),
        rows=rows,
        links=links,
        chart=(0, tuple(range(1, len(types) + 1)), True),
        total_row=True,
    )


def _outcome_cells(by_status: dict[str, int]) -> list[int]:
    """Under way (every status before an outcome), each outcome, then the total."""
    under_way = sum(n for s, n in by_status.items() if s not in RISK_OUTCOMES)
    cells = [under_way, *(by_status.get(s, 0) for s in RISK_OUTCOMES)]
    return [*cells, sum(cells)]


def by_risk(period: ReportPeriod) -> Figure:
    stmt = (
        select(ChangeRequest.risk, ChangeRequest.status, func.count())
        .where(_in_window(period), *_typed(period))
        .group_by(ChangeRequest.risk, ChangeRequest.status)
    )
    counts = {(r, s): n for r, s, n in db.session.execute(stmt)}
    rows, links = [], {}
    for risk in RISKS:
        by_status = {s: n for (r, s), n in counts.items() if r == risk}
        for column, status in enumerate(RISK_OUTCOMES, start=2):
            links[len(rows), column] = _window_args(period, status=status, risk=risk)
        links[len(rows), len(RISK_OUTCOMES) + 2] = _window_args(period, risk=risk)
        rows.append((risk, *_outcome_cells(by_status)))
    for column, status in enumerate(RISK_OUTCOMES, start=2):
        links[len(rows), column] = _window_args(period, status=status)
    links[len(rows), len(RISK_OUTCOMES) + 2] = _window_args(period)
    rows.append(("All", *(sum(row[c] for row in rows) for c in range(1, len(RISK_OUTCOMES) + 3))))
    return Figure(
        key="by_risk",
        title="Changes by risk and outcome",
        definition=WINDOW_BASIS + " By their risk and current status; “under way” is any "
        "status before an outcome (draft to validating).",
        header=("Risk", "Under way", "Rejected", "Completed", "Failed", "Closed", "Total"),
        rows=rows,
        links=links,
        unlinked="“Under way” spans several statuses, which the change list cannot show "
        "at once, so it is not linked.",
        chart=(0, tuple(range(1, len(RISK_OUTCOMES) + 2)), True),
        total_row=True,
    )


def success_rate(period: ReportPeriod) -> Figure:
    """The outcome is the status the finishing step moved to, from the change's history:
    a closed change no longer shows whether it completed or failed."""
    finished = (
        select(ChangeHistory.change_id, ChangeHistory.new_value.label("outcome"))
        .where(ChangeHistory.field == "status", ChangeHistory.new_value.in_(FINISHED))
        .subquery()
    )

    def outcome_count(outcome: str) -> Any:
        return func.count(distinct(case((finished.c.outcome == outcome, ChangeRequest.id))))

    stmt = (
        select(ChangeRequest.type, outcome_count("completed"), outcome_count("failed"))
        .join(finished, finished.c.change_id == ChangeRequest.id)
        .where(_within(ChangeRequest.finished_at, period), *_typed(period))
        .group_by(ChangeRequest.type)
    )
    counts = {t: (c, f) for t, c, f in db.session.execute(stmt)}
    rows = []
    for type_ in _types(period):
        completed, failed = counts.get(type_, (0, 0))
        rows.append((type_, completed, failed, percent(completed, completed + failed)))
    completed, failed = sum(r[1] for r in rows), sum(r[2] for r in rows)
    rows.append(("All", completed, failed, percent(completed, completed + failed)))
    return Figure(
        key="success",
        title="Success rate",
        definition=(
            "Changes that finished in the period (their finish time, when they were "
            "marked completed or failed, falls in it), counted by the status that step "
            "moved them to in their history, so a change closed since counts as the "
            "outcome it was closed from. Success rate = completed ÷ (completed + failed)."
        ),
        header=("Type", "Completed", "Failed", "Success rate %"),
        rows=rows,
        unlinked=NOT_LISTABLE.format("finish time or by what a closed change closed from"),
        chart=(0, (1, 2), True),
        total_row=True,
    )


def emergency_share(period: ReportPeriod) -> Figure:
    emergency = ChangeRequest.type == "emergency"
    stmt = select(func.coalesce(func.sum(case((emergency, 1), else_=0)), 0), func.count()).where(
        _in_window(period)
    )
    emergencies, changes = db.session.execute(stmt).one()
    window = {"window_from": period.start.isoformat(), "window_to": period.end.isoformat()}
    return Figure(
        key="emergency",
        title="Emergency share",
        definition=WINDOW_BASIS + " Emergency changes ÷ all those changes. The type "
        "filter does not apply (it would make the share 0 or 100 %).",
        header=("Emergency changes", "All changes", "Emergency share %"),
        rows=[(emergencies, changes, percent(emergencies, changes))],
        links={(0, 0): {**window, "type": "emergency"}, (0, 1): window},
    )


def linked_incidents(period: ReportPeriod) -> Figure:
    incident_links = (
        select(change_tickets.c.change_id, change_tickets.c.ticket_id)
        .join(Ticket, Ticket.id == change_tickets.c.ticket_id)
        .where(Ticket.type == "incident")
        .subquery()
    )
    stmt = (
        select(
            ChangeRequest.type,
            func.count(distinct(ChangeRequest.id)),
            func.count(distinct(case((incident_links.c.ticket_id.is_not(None), ChangeRequest.id)))),
            func.count(distinct(incident_links.c.ticket_id)),
        )
        .outerjoin(incident_links, incident_links.c.change_id == ChangeRequest.id)
        .where(_in_window(period), *_typed(period))
        .group_by(ChangeRequest.type)
    )
    counts = {t: rest for t, *rest in db.session.execute(stmt)}
    rows, links = [], {}
    for type_ in _types(period):
        changes, linked, incidents = counts.get(type_, (0, 0, 0))
        links[len(rows), 1] = _window_args(period, type=type_)
        rows.append((type_, changes, linked, percent(linked, changes), incidents))
    return Figure(
        key="linked_incidents",
        title="Changes linked to incidents",
        definition=WINDOW_BASIS + " Of those, the changes linked to at least one ticket "
        "of type incident, and how many distinct incidents they are linked to (an "
        "incident linked to changes of two types counts under each).",
        header=("Type", "Changes", "Linked to an incident", "Linked %", "Incidents"),
        rows=rows,
        links=links,
        unlinked="Change counts link to the change list; it cannot filter by linked "
        "tickets, so the linked counts are not linked.",
        chart=(0, (1, 2), False),
    )


def _hours(seconds: Any) -> float | None:
    return None if seconds is None else round(float(seconds) / 3600, 1)


def approval_lead_time(period: ReportPeriod) -> Figure:
    dialect = db.session.get_bind().dialect.name
    lead = elapsed_seconds(ChangeRequest.decided_at, ChangeRequest.submitted_at, dialect)
    reviewed = ~and_(ChangeRequest.type == "standard", ChangeRequest.template_id.is_not(None))
    where = [
        _within(ChangeRequest.decided_at, period),
        ChangeRequest.submitted_at.is_not(None),
        reviewed,
        *_typed(period),
    ]
    labels = [*_types(period), "All"]
    # One row per type and one for all, as a union: the median needs each set apart.
    typed = {label: [ChangeRequest.type == label] for label in labels if label != "All"}
    parts = [
        percentile_row(label, lead, [*where, *typed.get(label, [])], dialect, with_mean=True)
        for label in labels
    ]
    found = {row[0]: row for row in db.session.execute(parts[0].union_all(*parts[1:]))}
    rows = []
    for label in labels:
        _, count, median, _, mean = found.get(label, (label, 0, None, None, None))
        rows.append((label, count, _hours(median), _hours(mean)))
    return Figure(
        key="approval_lead",
        title="Approval lead time",
        definition=(
            "Changes decided (approved or rejected) in the period: hours from submission "
            "to the decision, of the latest approval round (a resubmission starts the "
            "clock again). Pre-approved standard changes, approved the moment they are "
            "submitted, are left out. The median interpolates between the two middle "
            "changes."
        ),
        header=("Type", "Decided", "Median (h)", "Mean (h)"),
        rows=rows,
        unlinked=NOT_LISTABLE.format("decision time"),
        chart=(0, (2, 3), False),
        total_row=True,
    )


def acknowledged_conflicts(period: ReportPeriod) -> Figure:
    stmt = (
        select(
            ChangeRequest.type,
            func.count(ConflictAcknowledgement.id),
            func.count(distinct(ConflictAcknowledgement.change_id)),
        )
        .join(ChangeRequest, ChangeRequest.id == ConflictAcknowledgement.change_id)
        .where(_within(ConflictAcknowledgement.created_at, period), *_typed(period))
        .group_by(ChangeRequest.type)
    )
    counts = {t: (n, c) for t, n, c in db.session.execute(stmt)}
    rows = [(t, *counts.get(t, (0, 0))) for t in _types(period)]
    rows.append(("All", sum(r[1] for r in rows), sum(r[2] for r in rows)))
    return Figure(
        key="conflicts",
        title="Acknowledged conflicts",
        definition=(
            "Window conflicts someone acknowledged in the period while scheduling a "
            "change (its window overlapped another change's on a shared service), by the "
            "type of the change being scheduled, and how many changes they concern."
        ),
        header=("Type", "Acknowledged conflicts", "Changes"),
        rows=rows,
        unlinked=NOT_LISTABLE.format("acknowledged conflict"),
        total_row=True,
    )


def change_figures(period: ReportPeriod) -> list[Figure]:
    """Every figure of the report, in page order: one query each."""
    return [
        by_status(period),
        by_risk(period),
        success_rate(period),
        emergency_share(period),
        linked_incidents(period),
        approval_lead_time(period),
        acknowledged_conflicts(period),
    ]
