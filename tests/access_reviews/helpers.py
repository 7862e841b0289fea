"""Builders for access reviews: teams, campaigns and decisions made through the services."""

from __future__ import annotations

from sqlalchemy import select

from portal.audits import reviews
from portal.audits.models import AuditEvent
from portal.audits.review_models import AccessReview, AccessReviewItem
from portal.extensions import db
from portal.mail import OutboxMessage
from portal.tickets.setup_models import Team
from portal.users.models import User


def make_team(name: str, lead: User | None, members: list[User]) -> Team:
    team = Team(name=name, lead_id=lead.id if lead else None)
    team.members = list(members)
    db.session.add(team)
    db.session.commit()
    return team


def start(actor: User | None, scope: str = "all", rule: str = "admins", **kw) -> AccessReview:
    return reviews.start_campaign(actor, scope=scope, reviewer_rule=rule, **kw)


def item_of(review: AccessReview, user: User) -> AccessReviewItem:
    item = db.session.scalar(
        select(AccessReviewItem).where(
            AccessReviewItem.review_id == review.id, AccessReviewItem.user_id == user.id
        )
    )
    assert item is not None, f"{user.email} is not in the roster"
    return item


def events(action: str) -> list[AuditEvent]:
    return list(
        db.session.scalars(
            select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
        )
    )


def outbox(to: str | None = None) -> list[OutboxMessage]:
    stmt = select(OutboxMessage).order_by(OutboxMessage.id)
    if to:
        stmt = stmt.where(OutboxMessage.to == to)
    return list(db.session.scalars(stmt))


def decide_all_keep(review: AccessReview, reviewer: User) -> None:
    """Keep everyone `reviewer` may decide, and confirm."""
    for item in db.session.scalars(
        select(AccessReviewItem).where(AccessReviewItem.review_id == review.id)
    ):
        if reviews.may_decide(item, reviewer) and not item.is_decided:
            reviews.decide(item, reviewer, "keep", comment="Still needed.")
    reviews.confirm(review, reviewer)
