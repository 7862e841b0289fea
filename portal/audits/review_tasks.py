"""The scheduled side of access reviews (schedule.py PERIODIC): reminders before the due
date, escalation at it, and the monthly campaign. Each job is safe to run again: a
reminder is once per campaign, reviewer and day; escalation once per campaign; the
monthly campaign once per month."""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import timedelta

from flask import current_app, render_template
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from .. import jobs, mail
from ..errors import ServiceError
from ..extensions import db
from ..security import Role
from ..timeutil import utcnow
from ..users.models import User
from ..web import external_url
from . import record, reviews
from .review_models import AccessReview, AccessReviewItem, AccessReviewReminder

log = logging.getLogger(__name__)
SUSPEND_COMMENT = (
    "No decision by the due date: access suspended (ACCESS_REVIEW_SUSPEND_UNDECIDED is on)."
)


def _settings():  # type: ignore[no-untyped-def]
    return current_app.config["SETTINGS"]


def _admins() -> list[User]:
    return list(
        db.session.scalars(
            select(User).where(User.role == Role.ADMIN, User.is_active.is_(True)).order_by(User.id)
        )
    )


def _unsettled(review: AccessReview) -> list[AccessReviewItem]:
    return list(
        db.session.scalars(
            select(AccessReviewItem)
            .where(AccessReviewItem.review_id == review.id, AccessReviewItem.applied_at.is_(None))
            .order_by(AccessReviewItem.id)
        )
    )


def _link(review: AccessReview) -> str:
    return external_url("audits.access_review", review_id=review.id)


# -- reminders -------------------------------------------------------------------------------


def send_reminders() -> int:
    """Email each reviewer with undecided items of a campaign due within
    ACCESS_REVIEW_REMINDER_DAYS; once per campaign, reviewer and day. The count sent."""
    now = utcnow()
    horizon = now + timedelta(days=_settings().ACCESS_REVIEW_REMINDER_DAYS)
    due_soon = db.session.scalars(
        select(AccessReview).where(
            AccessReview.status == "open", AccessReview.due_at > now, AccessReview.due_at <= horizon
        )
    ).all()
    sent = 0
    for review in due_soon:
        waiting: dict[int | None, int] = defaultdict(int)
        for item in _unsettled(review):
            waiting[item.reviewer_id] += 1
        per_person: dict[int, tuple[User, int]] = {}
        pool = waiting.pop(None, 0)
        if pool:
            for admin in _admins():
                per_person[admin.id] = (admin, pool)
        for reviewer_id, count in waiting.items():
            reviewer = db.session.get(User, reviewer_id)
            if reviewer is not None and reviewer.is_active:
                _, already = per_person.get(reviewer.id, (reviewer, 0))
                per_person[reviewer.id] = (reviewer, already + count)
        for reviewer, count in per_person.values():
            sent += _remind(review, reviewer, count)
    return sent


def _remind(review: AccessReview, reviewer: User, count: int) -> int:
    db.session.add(
        AccessReviewReminder(review_id=review.id, reviewer_id=reviewer.id, day=utcnow().date())
    )
    try:
        db.session.flush()
    except IntegrityError:
        jobs.rollback()  # sent today already (by this job or a concurrent run)
        return 0
    body = render_template(
        "audits/email/access_review_reminder.txt",
        review=review,
        reviewer=reviewer,
        count=count,
        link=_link(review),
    )
    mail.send(reviewer.email, f"Access review due {review.due_at:%Y-%m-%d}: {review.title}", body)
    jobs.commit()
    return 1


# -- the due date ------------------------------------------------------------------------------


def escalate_overdue() -> int:
    """At the due date: undecided access goes to the admins (by email), suspended first
    when ACCESS_REVIEW_SUSPEND_UNDECIDED says so. Campaigns escalated: their count."""
    overdue = db.session.scalars(
        select(AccessReview.id).where(
            AccessReview.status == "open",
            AccessReview.escalated_at.is_(None),
            AccessReview.due_at <= utcnow(),
        )
    ).all()
    return sum(_escalate(review_id) for review_id in overdue)


def _escalate(review_id: int) -> int:
    claimed = db.session.execute(
        update(AccessReview)
        .where(AccessReview.id == review_id, AccessReview.escalated_at.is_(None))
        .values(escalated_at=utcnow())
    ).rowcount
    jobs.commit()
    if not claimed:
        return 0  # another run has it
    review = db.session.get(AccessReview, review_id)
    assert review is not None
    suspended: list[str] = []
    if _settings().ACCESS_REVIEW_SUSPEND_UNDECIDED:
        # Only access nobody decided on: a decision waiting for its reviewer's confirmation
        # goes to the admins with the rest, as it stands.
        for item in (i for i in _unsettled(review) if i.decision is None):
            item.decision, item.new_role, item.comment = "deactivate", None, SUSPEND_COMMENT
            item.decided_by_id, item.decided_at = None, utcnow()
            if reviews.apply_item(item, reviews.SYSTEM):
                suspended.append(f"{item.snapshot['name']} <{item.snapshot['email']}>")
    waiting = _unsettled(review)
    for item in waiting:
        item.reviewer_id = None  # the admins decide what is left
    record(
        "access_review.escalated",
        None,
        review,
        reason="due date passed",
        undecided=len(waiting),
        suspended=suspended,
    )
    body = render_template(
        "audits/email/access_review_escalated.txt",
        review=review,
        waiting=waiting,
        suspended=suspended,
        link=_link(review),
    )
    for admin in _admins():
        mail.send(admin.email, f"Access review overdue: {review.title}", body)
    jobs.commit()
    if not waiting:
        reviews.complete(review, reviews.SYSTEM)
    return 1


@jobs.job
def review_sweep() -> str:
    """Reminders and escalation, every few minutes (schedule.py)."""
    sent = send_reminders()
    escalated = escalate_overdue()
    return f"{sent} reminder(s), {escalated} campaign(s) escalated"


# -- the monthly campaign ----------------------------------------------------------------------


@jobs.job
def monthly_review() -> str:
    """On the 1st of a month, start that month's campaign (all active users, reviewed by
    the admins) unless it exists already."""
    now = utcnow()
    if now.day != 1:
        return "not the 1st"
    period = f"{now:%Y-%m}"
    if db.session.scalar(select(AccessReview.id).where(AccessReview.period == period)):
        return "exists"
    try:
        review = reviews.start_campaign(
            None,
            scope="all",
            reviewer_rule="admins",
            title=f"Monthly access review {now:%B %Y}",
            period=period,
        )
    except IntegrityError:
        jobs.rollback()
        return "exists"  # a concurrent run started it
    except ServiceError as exc:
        jobs.rollback()
        log.warning("monthly access review not started: %s", exc.message)
        return "nobody to review"
    return f"started {review.id}"
