"""Access reviews (DESIGN §3, §6): start a campaign, decide each person's access, carry the
decisions out, complete it with its evidence.

They live with the audit trail rather than with the accounts because what they produce
is evidence for an auditor (roster hash, chain head, PDF and CSV), read under
`audits:read`; the accounts are only changed through the users services, which audit
and end sessions as they always do.

The roster hash: sha256 (hex) of the UTF-8 bytes of the JSON array of the frozen items
sorted by user id, each `{"email", "role", "status", "team", "user_id"}`, written with
sorted keys, `","` and `":"` as separators and no ASCII escaping (`roster_json`). The
evidence CSV carries those five values per row, so an auditor can recompute it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import select

from .. import jobs
from ..errors import Conflict, Forbidden, ServiceError
from ..extensions import db
from ..security import ROLE_PERMISSIONS, Role
from ..tickets.setup_models import Team, team_members
from ..timeutil import utcnow
from ..users import services as user_services
from ..users.models import User
from . import record
from .models import AuditEvent
from .review_models import DECISIONS, REVIEWER_RULES, SCOPES, AccessReview, AccessReviewItem

COMMENT_MAX = 1000
TITLE_MAX = 200


class _System:
    """The actor of the scheduler's work (no account; audited as `system`)."""

    id = None
    email = "system"
    name = "system"
    role = None


SYSTEM: Any = _System()


def _settings() -> Any:
    return current_app.config["SETTINGS"]


# -- the roster ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Member:
    user: User
    team: str  # the team names at the freeze, sorted, ", "-joined ("" for none)
    reviewer_id: int | None


def _roster(scope: str, team: Team | None, rule: str) -> list[Member]:
    """Everyone in scope with their teams, in one query (a row per person and team)."""
    stmt = (
        select(User, Team.name, Team.lead_id)
        .outerjoin(team_members, team_members.c.user_id == User.id)
        .outerjoin(Team, Team.id == team_members.c.team_id)
        .where(User.is_active.is_(True))
        .order_by(User.id, Team.name)
    )
    if scope == "admins":
        stmt = stmt.where(User.role == Role.ADMIN)
    elif scope == "team":
        assert team is not None
        stmt = stmt.where(Team.id == team.id)
    people: dict[int, tuple[User, list[str], list[int]]] = {}
    for user, team_name, lead_id in db.session.execute(stmt):
        _, names, leads = people.setdefault(user.id, (user, [], []))
        if team_name is not None:
            names.append(team_name)
            if lead_id is not None and lead_id != user.id:
                leads.append(lead_id)
    members = []
    for user, names, leads in people.values():
        # A person is reviewed by the lead of (the first by name of) their teams; with no
        # lead but themselves, by the admins.
        reviewer = leads[0] if rule == "team_leads" and leads else None
        members.append(Member(user, ", ".join(sorted(names)), reviewer))
    return members


def roster_json(items: Iterable[dict[str, Any]]) -> bytes:
    """The canonical bytes the roster hash covers (see the module's docstring)."""
    rows = sorted(
        ({k: item[k] for k in ("user_id", "email", "role", "status", "team")} for item in items),
        key=lambda row: row["user_id"],
    )
    return json.dumps(rows, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def roster_hash(items: Iterable[dict[str, Any]]) -> str:
    return hashlib.sha256(roster_json(items)).hexdigest()


def frozen(item: AccessReviewItem) -> dict[str, Any]:
    """An item's frozen values as the roster hash reads them."""
    return {"user_id": item.user_id, **item.snapshot}


# -- starting ----------------------------------------------------------------------------------


def start_campaign(
    actor: User | None,
    *,
    scope: str,
    reviewer_rule: str,
    team_id: int | None = None,
    title: str | None = None,
    due_at: datetime | None = None,
    period: str | None = None,
) -> AccessReview:
    """Freeze the roster of `scope`, hash it and open the campaign; refuses an empty one."""
    if scope not in SCOPES:
        raise ServiceError("Choose one of the listed scopes.", field="scope")
    if reviewer_rule not in REVIEWER_RULES:
        raise ServiceError("Choose who reviews.", field="reviewer_rule")
    team = db.session.get(Team, team_id) if scope == "team" and team_id else None
    if scope == "team" and team is None:
        raise ServiceError("Choose the team to review.", field="team_id")
    now = utcnow()
    due_at = due_at or now + timedelta(days=_settings().ACCESS_REVIEW_DUE_DAYS)
    if due_at <= now:
        raise ServiceError("The due date must be in the future.", field="due_date")
    members = _roster(scope, team, reviewer_rule)
    if not members:
        raise ServiceError("Nobody active is in this scope: there is nothing to review.")
    title = (title or "").strip() or f"Access review {now:%Y-%m-%d}"
    review = AccessReview(
        title=title[:TITLE_MAX],
        scope=scope,
        team_id=team.id if team else None,
        reviewer_rule=reviewer_rule,
        due_at=due_at,
        period=period,
        roster_hash="",
        roster_count=len(members),
        started_by_id=getattr(actor, "id", None),
        started_at=now,
    )
    db.session.add(review)
    db.session.flush()
    items = [
        AccessReviewItem(
            review_id=review.id,
            user_id=m.user.id,
            reviewer_id=m.reviewer_id,
            snapshot={
                "email": m.user.email,
                "name": m.user.name,
                "role": m.user.role,
                "status": m.user.status,
                "team": m.team,
                "last_login_at": m.user.last_login_at.isoformat() if m.user.last_login_at else None,
            },
        )
        for m in members
    ]
    db.session.add_all(items)
    review.roster_hash = roster_hash(frozen(i) for i in items)
    record(
        "access_review.started",
        actor,
        review,
        title=review.title,
        scope=scope,
        team=team.name if team else None,
        reviewer_rule=reviewer_rule,
        due_at=due_at,
        roster_count=len(items),
        roster_hash=review.roster_hash,
    )
    jobs.commit()
    return review


# -- deciding ----------------------------------------------------------------------------------


def may_decide(item: AccessReviewItem, user: Any) -> bool:
    """The assigned reviewer (or, for the admins' items, any admin), never the person."""
    if getattr(user, "id", None) is None or item.user_id == user.id:
        return False
    if item.reviewer_id is None:
        return user.role == Role.ADMIN and user.is_active
    return item.reviewer_id == user.id


def check_can_decide(item: AccessReviewItem, reviewer: User) -> None:
    if item.user_id == reviewer.id:
        raise Forbidden("Nobody reviews their own access: another reviewer decides this one.")
    if not may_decide(item, reviewer):
        who = item.reviewer.name if item.reviewer else "the admins"
        raise Forbidden(f"This person's access is reviewed by {who}, not by you.")


def _check_new_role(item: AccessReviewItem, reviewer: User, new_role: str | None) -> str:
    try:
        role = Role(new_role or "")
    except ValueError:
        raise ServiceError("Choose the new role.", field="new_role") from None
    current = item.person.role
    if role == current:
        raise ServiceError(f"{item.person.name} already has the role {role}.", field="new_role")
    # A lead may narrow a member's access, never widen it: only an admin grants.
    if reviewer.role != Role.ADMIN and not (
        ROLE_PERMISSIONS[role] <= ROLE_PERMISSIONS[Role(current)]
    ):
        raise ServiceError(
            f"Only an admin may give the role {role}; choose a role with less access.",
            field="new_role",
        )
    return role.value


def decide(
    item: AccessReviewItem,
    reviewer: User,
    decision: str,
    new_role: str | None = None,
    comment: str | None = None,
) -> None:
    """Record `reviewer`'s decision on `item`; carried out once they confirm (`confirm`)."""
    review = db.session.get(AccessReview, item.review_id)
    assert review is not None
    if not review.is_open:
        raise Conflict(f"This access review is {review.status}; decisions are closed.")
    check_can_decide(item, reviewer)
    if item.is_settled:
        raise Conflict("This decision has been carried out already.")
    if decision not in DECISIONS:
        raise ServiceError("Choose keep, change role or deactivate.", field="decision")
    comment = (comment or "").strip()
    if len(comment) > COMMENT_MAX:
        raise ServiceError(f"Keep the comment under {COMMENT_MAX} characters.", field="comment")
    if decision != "keep" and not comment:
        raise ServiceError("Say why: a comment is required for this decision.", field="comment")
    role = _check_new_role(item, reviewer, new_role) if decision == "change_role" else None
    item.decision, item.new_role, item.comment = decision, role, comment or None
    item.decided_by_id, item.decided_at, item.outcome = reviewer.id, utcnow(), None
    record(
        "access_review.decided",
        reviewer,
        item.person,
        review=review.id,
        item=item.id,
        decision=decision,
        new_role=role,
        comment=item.comment,
    )
    jobs.commit()


# -- carrying decisions out ------------------------------------------------------------------


def apply_item(item: AccessReviewItem, actor: Any) -> bool:
    """Carry `item`'s decision out through the users services (which audit the change and
    end sessions); False, with the refusal on the item, when a service refuses."""
    person = item.person
    before_role = person.role
    item.applied_at = utcnow()
    if item.decision == "change_role" and before_role == item.new_role:
        item.outcome = f"already {before_role}; nothing changed"
    elif item.decision == "change_role":
        item.outcome = f"role {before_role} → {item.new_role}"
    elif item.decision == "deactivate" and not person.is_active:
        item.outcome = "already deactivated; nothing changed"
    elif item.decision == "deactivate":
        item.outcome = "deactivated; sessions ended"
    else:
        item.outcome = "kept; nothing changed"
    record(
        "access_review.applied",
        actor,
        person,
        review=item.review_id,
        item=item.id,
        decision=item.decision,
        outcome=item.outcome,
    )
    try:
        if item.decision == "change_role":
            assert item.new_role is not None
            user_services.change_role(person, item.new_role, actor)
        elif item.decision == "deactivate" and person.is_active:
            user_services.deactivate(person, actor)
        jobs.commit()  # keep, or a service with nothing to change: commit the item alone
    except ServiceError as exc:
        jobs.rollback()
        item.outcome = f"Not carried out: {exc.message}"[:300]
        jobs.commit()
        return False
    return True


@dataclass
class Confirmed:
    applied: int = 0
    refused: list[str] | None = None


def confirm(review: AccessReview, reviewer: User) -> Confirmed:
    """Carry out every decision `reviewer` made in `review` that is not carried out yet."""
    if not review.is_open:
        raise Conflict(f"This access review is {review.status}.")
    pending = db.session.scalars(
        select(AccessReviewItem)
        .where(
            AccessReviewItem.review_id == review.id,
            AccessReviewItem.decided_by_id == reviewer.id,
            AccessReviewItem.decision.is_not(None),
            AccessReviewItem.applied_at.is_(None),
        )
        .order_by(AccessReviewItem.id)
    ).all()
    result = Confirmed(refused=[])
    for item in pending:
        if apply_item(item, reviewer):
            result.applied += 1
        else:
            result.refused.append(f"{item.snapshot['name']}: {item.outcome}")  # type: ignore[union-attr]
    return result


# -- completing --------------------------------------------------------------------------------


def unsettled_count(review: AccessReview) -> int:
    return (
        db.session.scalar(
            select(db.func.count()).where(
                AccessReviewItem.review_id == review.id, AccessReviewItem.applied_at.is_(None)
            )
        )
        or 0
    )


def complete(review: AccessReview, actor: Any) -> AccessReview:
    """Close the campaign once every decision is carried out: stamp the chain's head and
    store the evidence (PDF and CSV)."""
    from .review_evidence import store_evidence

    if not review.is_open:
        raise Conflict(f"This access review is {review.status} already.")
    waiting = unsettled_count(review)
    if waiting:
        raise Conflict(
            f"{waiting} person(s) still need a decision that is carried out "
            "(decided and confirmed) before the review can complete."
        )
    head = db.session.execute(
        select(AuditEvent.id, AuditEvent.hash).order_by(AuditEvent.id.desc()).limit(1)
    ).first()
    review.chain_head_id, review.chain_head_hash = (head[0], head[1]) if head else (None, None)
    review.status, review.completed_at = "completed", utcnow()
    review.completed_by_id = getattr(actor, "id", None)
    pdf_key, csv_key = store_evidence(review)
    review.evidence_pdf_key, review.evidence_csv_key = pdf_key, csv_key
    record(
        "access_review.completed",
        actor,
        review,
        roster_hash=review.roster_hash,
        chain_head_id=review.chain_head_id,
        chain_head_hash=review.chain_head_hash,
        evidence_pdf=pdf_key,
        evidence_csv=csv_key,
    )
    jobs.commit()
    return review


def cancel(review: AccessReview, actor: User) -> AccessReview:
    """Stop an open campaign without evidence (started by mistake, or superseded).
    Decisions already carried out stay done; the rest are dropped."""
    if not review.is_open:
        raise Conflict(f"This access review is {review.status} already.")
    review.status = "cancelled"
    record("access_review.cancelled", actor, review, left_undone=unsettled_count(review))
    jobs.commit()
    return review
