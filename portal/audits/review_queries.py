"""What the access-review pages read: the campaigns one may see, a campaign's items one
may see, and the live facts shown beside each person. Each is a fixed number of
queries whatever the roster's size (grouped over the whole roster, never per person)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from flask import abort
from sqlalchemy import and_, func, not_, or_, select
from sqlalchemy.orm import selectinload

from ..extensions import db
from ..security import Permission, role_has
from ..timeutil import utcnow
from ..users.auth import open_session_counts
from .models import AuditEvent
from .review_models import AccessReview, AccessReviewItem

LIST_LIMIT = 100
IDLE_DAYS = 30
RECENT_DAYS = 30


def sees_all(user: Any) -> bool:
    """Admins and auditors see every campaign and every item; others their own items."""
    return role_has(user.role, Permission.AUDITS_READ)


@dataclass
class Progress:
    total: int = 0
    decided: int = 0
    settled: int = 0


def reviews_for(user: Any) -> tuple[list[AccessReview], dict[int, Progress]]:
    """The newest campaigns `user` may open, and each one's progress (two queries)."""
    stmt = (
        select(AccessReview)
        .options(selectinload(AccessReview.team))
        .order_by(AccessReview.id.desc())
        .limit(LIST_LIMIT)
    )
    if not sees_all(user):
        mine = select(AccessReviewItem.review_id).where(AccessReviewItem.reviewer_id == user.id)
        stmt = stmt.where(AccessReview.id.in_(mine))
    reviews = list(db.session.scalars(stmt))
    progress: dict[int, Progress] = {r.id: Progress() for r in reviews}
    if reviews:
        rows = db.session.execute(
            select(
                AccessReviewItem.review_id,
                func.count(),
                func.count(AccessReviewItem.decision),
                func.count(AccessReviewItem.applied_at),
            )
            .where(AccessReviewItem.review_id.in_(list(progress)))
            .group_by(AccessReviewItem.review_id)
        )
        for review_id, total, decided, settled in rows:
            progress[review_id] = Progress(total, decided, settled)
    return reviews, progress


def get_review_or_404(review_id: int) -> AccessReview:
    review = db.session.get(AccessReview, review_id)
    if review is None:
        abort(404)
    return review


def items_for(review: AccessReview, user: Any) -> list[AccessReviewItem]:
    """The items of `review` that `user` may see (403 when that is none of them)."""
    stmt = (
        select(AccessReviewItem)
        .where(AccessReviewItem.review_id == review.id)
        .options(selectinload(AccessReviewItem.reviewer), selectinload(AccessReviewItem.decided_by))
        .order_by(AccessReviewItem.id)
    )
    if not sees_all(user):
        stmt = stmt.where(AccessReviewItem.reviewer_id == user.id)
    items = list(db.session.scalars(stmt))
    if not items and not sees_all(user):
        abort(403)
    return items


def get_item_or_404(review: AccessReview, item_id: int) -> AccessReviewItem:
    item = db.session.get(AccessReviewItem, item_id)
    if item is None or item.review_id != review.id:
        abort(404)
    return item


@dataclass
class Facts:
    """The live facts beside each person: what they last did with their role, open
    sessions and, for admins, their recent admin actions."""

    last_used: dict[int, tuple[datetime, str]] = field(default_factory=dict)
    sessions: dict[int, int] = field(default_factory=dict)
    admin_actions: dict[int, int] = field(default_factory=dict)


# Signing in and out and being refused are not using a role; neither is ending a session.
_NOT_USE = or_(AuditEvent.action.like("auth.%"), AuditEvent.action.like("session.%"))


def facts_for(items: list[AccessReviewItem]) -> Facts:
    """Three grouped queries for the whole roster (none when it is empty)."""
    ids = [item.user_id for item in items]
    if not ids:
        return Facts()
    latest = (
        select(func.max(AuditEvent.id).label("id"))
        .where(AuditEvent.actor_id.in_(ids), not_(_NOT_USE))
        .group_by(AuditEvent.actor_id)
        .subquery()
    )
    last_used = {
        actor_id: (created_at, action)
        for actor_id, created_at, action in db.session.execute(
            select(AuditEvent.actor_id, AuditEvent.created_at, AuditEvent.action).join(
                latest, AuditEvent.id == latest.c.id
            )
        )
    }
    admins = [item.user_id for item in items if item.person.role == "admin"]
    admin_actions: dict[int, int] = {}
    if admins:
        since = utcnow() - timedelta(days=RECENT_DAYS)
        # An admin's change, as the logs' ADMIN_ACTION reads it (portal/logs.py is_change).
        changes = and_(
            not_(AuditEvent.action.like("auth.%")), not_(AuditEvent.action.like("%.downloaded"))
        )
        admin_actions = dict(
            db.session.execute(
                select(AuditEvent.actor_id, func.count())
                .where(AuditEvent.actor_id.in_(admins), AuditEvent.created_at >= since, changes)
                .group_by(AuditEvent.actor_id)
            ).all()
        )
    return Facts(last_used, open_session_counts(ids), admin_actions)


def hint(item: AccessReviewItem) -> str | None:
    """A suggestion for the reviewer, from the person's sign-ins."""
    person = item.person
    if not person.is_active:
        return "Already deactivated."
    last = person.last_login_at
    if last is None or last < utcnow() - timedelta(days=IDLE_DAYS):
        return f"No sign-in for {IDLE_DAYS} days: suggest deactivate."
    return None
