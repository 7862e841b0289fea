"""Submission and the decision: who is asked, who may vote, how the votes count
(risk.py), and what a decision does. Same habits as services.py."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from .. import jobs
from ..audits import record
from ..errors import Conflict, ServiceError
from ..extensions import db
from ..security import ROLE_PERMISSIONS, Permission, Role
from ..timeutil import utcnow
from ..users.models import User
from . import notify, risk
from .models import ChangeRequest, ChangeVote
from .services import keep_history, move, require_owner
from .workflow import check_transition


def approver_roles() -> list[str]:
    return [r.value for r, perms in ROLE_PERMISSIONS.items() if Permission.CHANGES_APPROVE in perms]


def waiting_on(change: ChangeRequest, admins_only: bool = False) -> list[User]:
    """The people who may still vote on `change` in this round."""
    voted = {v.approver_id for v in change.current_votes}
    excluded = voted | {change.requester_id, change.implementer_id or 0}
    roles = [Role.ADMIN.value] if admins_only else approver_roles()
    return [
        user
        for user in db.session.scalars(
            select(User).where(User.is_active, User.role.in_(roles)).order_by(User.name)
        )
        if user.id not in excluded
    ]


def requirement(change: ChangeRequest) -> risk.Requirement:
    return risk.requirement(change.type, change.risk, change.is_pre_approved)


def tally(change: ChangeRequest) -> risk.Tally:
    return risk.tally(change.current_votes, requirement(change))


def submit(change: ChangeRequest, actor: User) -> None:
    """Submit a draft (or resubmit a rejected change, starting a new round of votes).
    A standard change from an active template is approved at once, as pre-approved;
    any other goes to review and its approvers are told."""
    require_owner(change, actor)
    resubmission = change.status == "rejected"
    check_transition(change, "submitted")
    if change.is_pre_approved and change.template is not None and not change.template.is_active:
        raise Conflict(
            f"The template “{change.template.name}” was retired; make this a normal change."
        )
    if resubmission:
        cleared = len(change.current_votes)
        keep_history(
            change, "approval_round", change.approval_round, change.approval_round + 1, actor
        )
        change.approval_round += 1
        # The reason stays in the history and on the rejecting vote.
        keep_history(change, "rejection_reason", change.rejection_reason, None, actor)
        change.rejection_reason = None
        record("change.votes_cleared", actor, change, round=change.approval_round, cleared=cleared)
    move(change, "submitted", actor, round=change.approval_round, resubmission=resubmission)
    now = utcnow()
    change.submitted_at = now
    if change.is_pre_approved:
        name = change.template.name if change.template else ""
        # Nobody voted: the template's own approval is what approves it.
        move(
            change,
            "approved",
            None,
            f"pre-approved standard template “{name}”",
            pre_approved=True,
            template=name,
        )
        change.decided_at = now
        notify.decided(change, "pre-approved")
    else:
        move(change, "in_review", actor, needs=requirement(change).describe())
        notify.awaiting_approval(change, waiting_on(change), requirement(change).describe())
    jobs.commit()


def resubmit(change: ChangeRequest, actor: User) -> None:
    """Send a revised, rejected change back for approval; earlier votes stop counting."""
    if change.status != "rejected":
        raise Conflict("Only a rejected change is resubmitted.")
    submit(change, actor)


def vote(change: ChangeRequest, approver: User, decision: str, comment: str = "") -> ChangeVote:
    """Approve or reject, with a comment (a rejection must say why). The vote that
    completes the approvals approves the change; any rejection rejects it."""
    if decision not in ("approve", "reject"):
        raise ServiceError("Approve or reject.", field="decision")
    comment = comment.strip()
    if decision == "reject" and not comment:
        raise ServiceError("Say why you reject it; the requester will read it.", field="comment")
    if change.status != "in_review":
        raise Conflict(f"{change.number} is {change.status_label.lower()}, not waiting for votes.")
    risk.check_voter(
        approver.id,
        approver.role,
        approver.is_active,
        change.requester_id,
        change.implementer_id,
        (v.approver_id for v in change.current_votes),
    )
    ballot = ChangeVote(
        round=change.approval_round,
        approver_id=approver.id,
        approver_role=approver.role,
        decision=decision,
        comment=comment,
    )
    try:
        with db.session.begin_nested():
            change.votes.append(ballot)
            db.session.flush()
    except IntegrityError:
        # A concurrent request cast this approver's vote first.
        db.session.expire(change, ["votes"])
        raise Conflict("You have already voted on this change in this round.") from None
    record(
        "change.vote_cast",
        approver,
        change,
        vote_id=ballot.id,
        decision=decision,
        comment=comment,
        round=change.approval_round,
    )
    counts = tally(change)
    if counts.rejected:
        move(change, "rejected", approver, comment, round=change.approval_round)
        keep_history(change, "rejection_reason", change.rejection_reason, comment, approver)
        change.rejection_reason = comment
        change.decided_at = utcnow()
        notify.decided(change, "rejected", comment)
    elif counts.approved:
        move(
            change,
            "approved",
            approver,
            round=change.approval_round,
            approvals=counts.approvals,
            admin_approvals=counts.admin_approvals,
        )
        change.decided_at = utcnow()
        notify.decided(change, "approved")
    elif counts.admin_missing and counts.approvals == requirement(change).approvals - 1:
        # Only the admin's vote is missing now: from here on the change waits for an admin.
        notify.awaiting_approval(change, waiting_on(change, admins_only=True), "an admin")
    jobs.commit()
    return ballot
