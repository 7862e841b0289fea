"""Checks of the work itself: separation of duties on changes, breached tickets without a
note, major incidents closed without a review, emergency changes without a retrospective.

These look at the whole history, not only the run's period: a breach nobody explained
last quarter is still unexplained, and a finding must stay open until it is put right
(a run that looked only at its own month would close last month's findings unfixed).
Every check is a count and a filtered, limited select on indexed columns.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select

from ..changes.models import ChangeRequest, ChangeReview, ChangeVote
from ..extensions import db
from ..tickets.extra_models import ActionItem, IncidentReview
from ..tickets.incidents import MAJOR
from ..tickets.models import SEVERITY, Ticket, TicketReply
from ..users.models import User
from .check_types import MAX_FINDINGS_PER_CHECK, Context, Draft, Outcome, iso

CARRIED_OUT = ("completed", "failed", "closed")


def _count(*conditions: ColumnElement[bool], of: Any) -> int:
    return int(db.session.scalar(select(func.count()).select_from(of).where(*conditions)) or 0)


def separation_of_duties(ctx: Context) -> Outcome:
    """An approving vote cast by the change's own requester or implementer, in any round."""
    approvals = ChangeVote.decision == "approve"
    involved = or_(
        ChangeVote.approver_id == ChangeRequest.requester_id,
        ChangeVote.approver_id == ChangeRequest.implementer_id,
    )
    joined = select(ChangeVote.change_id).join(
        ChangeRequest, ChangeRequest.id == ChangeVote.change_id
    )
    total = int(
        db.session.scalar(select(func.count(func.distinct(ChangeVote.change_id))).where(approvals))
        or 0
    )
    breached = joined.where(approvals, involved).distinct()
    failing = int(db.session.scalar(select(func.count()).select_from(breached.subquery())) or 0)
    change_ids = list(
        db.session.scalars(breached.order_by(ChangeVote.change_id).limit(MAX_FINDINGS_PER_CHECK))
    )
    votes = (
        db.session.execute(
            select(
                ChangeVote.change_id,
                ChangeVote.id,
                ChangeVote.round,
                ChangeVote.created_at,
                ChangeVote.approver_id,
                ChangeRequest.title,
                ChangeRequest.requester_id,
                ChangeRequest.implementer_id,
                User.email,
            )
            .join(ChangeRequest, ChangeRequest.id == ChangeVote.change_id)
            .join(User, User.id == ChangeVote.approver_id)
            .where(approvals, involved, ChangeVote.change_id.in_(change_ids))
            .order_by(ChangeVote.change_id, ChangeVote.id)
        ).all()
        if change_ids
        else []
    )
    by_change: dict[int, list[Any]] = defaultdict(list)
    for vote in votes:
        by_change[vote.change_id].append(vote)
    drafts = []
    for change_id in change_ids:
        rows = by_change[change_id]
        first = rows[0]
        roles = sorted(
            {("requester" if v.approver_id == v.requester_id else "implementer") for v in rows}
        )
        drafts.append(
            Draft(
                f"change:{change_id}",
                f"CR-{change_id:06d} “{first.title[:80]}” approved by its {' and '.join(roles)}",
                [
                    {
                        "change_id": change_id,
                        "vote_id": v.id,
                        "round": v.round,
                        "at": iso(v.created_at),
                        "approver": v.email,
                        "as": "requester" if v.approver_id == v.requester_id else "implementer",
                    }
                    for v in rows
                ],
            )
        )
    return Outcome(total, drafts, failing)


def _ticket_drafts(condition: ColumnElement[bool], title: str) -> tuple[list[Draft], int]:
    failing = _count(condition, of=Ticket)
    rows = db.session.execute(
        select(
            Ticket.id,
            Ticket.subject,
            Ticket.type,
            Ticket.priority,
            Ticket.status,
            Ticket.response_due_at,
            Ticket.resolution_due_at,
            Ticket.closed_at,
        )
        .where(condition)
        .order_by(Ticket.id)
        .limit(MAX_FINDINGS_PER_CHECK)
    ).all()
    drafts = []
    for r in rows:
        severity = SEVERITY.get(r.priority, r.priority) if r.type == "incident" else r.priority
        drafts.append(
            Draft(
                f"ticket:{r.id}",
                title.format(number=f"T-{r.id:06d}", subject=r.subject[:80], severity=severity),
                [
                    {
                        "ticket_id": r.id,
                        "subject": r.subject,
                        "priority": severity,
                        "status": r.status,
                        "response_due": iso(r.response_due_at),
                        "resolution_due": iso(r.resolution_due_at),
                        "closed": iso(r.closed_at),
                    }
                ],
            )
        )
    return drafts, failing


def breached_without_note(ctx: Context) -> Outcome:
    """A ticket whose SLA was breached (either clock) with no internal note at all."""
    breached = Ticket.sla_state == "breached"
    noted = (
        select(TicketReply.id)
        .where(TicketReply.ticket_id == Ticket.id, TicketReply.is_internal.is_(True))
        .exists()
    )
    drafts, failing = _ticket_drafts(
        and_(breached, ~noted), "{number} “{subject}” breached its SLA with no note"
    )
    return Outcome(_count(breached, of=Ticket), drafts, failing)


def incidents_without_review(ctx: Context) -> Outcome:
    """A closed P0/P1 incident without a complete review: a timeline, a root cause and at
    least one action item (what closing one normally asks for, see tickets/incidents.py)."""
    major_closed = and_(
        Ticket.type == "incident", Ticket.priority.in_(MAJOR), Ticket.status == "closed"
    )
    has_items = select(ActionItem.id).where(ActionItem.review_id == IncidentReview.id).exists()
    reviewed = (
        select(IncidentReview.id)
        .where(
            IncidentReview.ticket_id == Ticket.id,
            func.trim(IncidentReview.timeline) != "",
            func.trim(IncidentReview.root_cause) != "",
            has_items,
        )
        .exists()
    )
    drafts, failing = _ticket_drafts(
        and_(major_closed, ~reviewed),
        "{severity} incident {number} “{subject}” closed without a review",
    )
    return Outcome(_count(major_closed, of=Ticket), drafts, failing)


def emergency_without_retrospective(ctx: Context) -> Outcome:
    carried_out = and_(ChangeRequest.type == "emergency", ChangeRequest.status.in_(CARRIED_OUT))
    reviewed = (
        select(ChangeReview.id)
        .where(ChangeReview.change_id == ChangeRequest.id, func.trim(ChangeReview.findings) != "")
        .exists()
    )
    condition = and_(carried_out, ~reviewed)
    failing = _count(condition, of=ChangeRequest)
    rows = db.session.execute(
        select(
            ChangeRequest.id,
            ChangeRequest.title,
            ChangeRequest.status,
            ChangeRequest.finished_at,
            User.email,
        )
        .join(User, User.id == ChangeRequest.requester_id)
        .where(condition)
        .order_by(ChangeRequest.id)
        .limit(MAX_FINDINGS_PER_CHECK)
    ).all()
    drafts = [
        Draft(
            f"change:{r.id}",
            f"Emergency change CR-{r.id:06d} “{r.title[:80]}” has no retrospective",
            [
                {
                    "change_id": r.id,
                    "title": r.title,
                    "status": r.status,
                    "finished": iso(r.finished_at),
                    "requester": r.email,
                }
            ],
        )
        for r in rows
    ]
    return Outcome(_count(carried_out, of=ChangeRequest), drafts, failing)
