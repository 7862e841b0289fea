"""The scheduled side: reminders before the due date, escalation at it, the monthly
campaign (portal/audits/review_tasks.py), each safe to run again."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from portal.audits import review_tasks, reviews
from portal.audits.review_models import AccessReview
from portal.extensions import db
from portal.schedule import PERIODIC
from portal.timeutil import utcnow
from tests.factories import make_user

from .helpers import events, item_of, make_team, outbox, start

pytestmark = pytest.mark.usefixtures("ctx")


def _due_in(review: AccessReview, delta: timedelta) -> None:
    review.due_at = utcnow() + delta
    db.session.commit()


def test_the_jobs_are_periodic() -> None:
    names = {entry.name for entry in PERIODIC}
    assert "portal.audits.review_tasks.review_sweep" in names
    assert "portal.audits.review_tasks.monthly_review" in names


def test_reviewers_with_undecided_items_are_reminded_once_a_day() -> None:
    admin = make_user(role="admin")
    lead = make_user(role="agent", email="lead@example.com")
    member = make_user(role="agent")
    decided = make_user(role="agent")
    make_team("Desk", lead, [lead, member, decided])
    review = start(admin, rule="team_leads", title="Desk review")
    reviews.decide(item_of(review, decided), lead, "keep")
    reviews.confirm(review, lead)

    _due_in(review, timedelta(days=10))
    assert review_tasks.send_reminders() == 0  # not yet within ACCESS_REVIEW_REMINDER_DAYS

    _due_in(review, timedelta(days=2))
    sent = review_tasks.send_reminders()
    again = review_tasks.send_reminders()

    (to_lead,) = outbox("lead@example.com")
    assert "Desk review" in to_lead.subject
    assert "1 person(s) you review" in to_lead.body
    assert f"http://portal.test/audits/access-reviews/{review.id}" in to_lead.body
    # The admins' items (the lead's own and the admin's) remind the admin.
    (to_admin,) = outbox(admin.email)
    assert "2 person(s)" in to_admin.body
    assert (sent, again) == (2, 0)


def test_at_the_due_date_undecided_access_goes_to_the_admins() -> None:
    admin = make_user(role="admin", email="boss@example.com")
    lead = make_user(role="agent")
    member = make_user(role="agent", name="Mo Member")
    make_team("Desk", lead, [lead, member])
    review = start(admin, rule="team_leads")
    _due_in(review, timedelta(seconds=-1))

    assert review_tasks.escalate_overdue() == 1
    assert review_tasks.escalate_overdue() == 0

    db.session.expire_all()
    assert item_of(review, member).reviewer_id is None  # now any admin decides it
    assert member.is_active  # no suspension unless the setting says so
    assert review.status == "open" and review.escalated_at is not None
    (mail,) = outbox("boss@example.com")
    assert "overdue" in mail.subject
    assert "Mo Member" in mail.body
    (escalated,) = events("access_review.escalated")
    assert escalated.actor_id is None
    assert escalated.data["undecided"] == 3
    reviews.decide(item_of(review, member), admin, "keep")


def test_with_the_setting_on_undecided_access_is_suspended(settings) -> None:  # type: ignore[no-untyped-def]
    settings(ACCESS_REVIEW_SUSPEND_UNDECIDED=True)
    admin = make_user(role="admin")
    other_admin = make_user(role="admin")
    idle = make_user(role="agent", name="Idle Person")
    review = start(admin)
    reviews.decide(item_of(review, admin), other_admin, "keep")
    reviews.decide(item_of(review, other_admin), admin, "keep")
    reviews.confirm(review, admin)
    reviews.confirm(review, other_admin)
    _due_in(review, timedelta(seconds=-1))

    review_tasks.escalate_overdue()

    db.session.expire_all()
    assert not idle.is_active
    item = item_of(review, idle)
    assert item.decision == "deactivate" and item.decided_by_id is None
    assert "ACCESS_REVIEW_SUSPEND_UNDECIDED" in item.comment
    (deactivated,) = events("user.deactivated")
    assert deactivated.actor_id is None and deactivated.actor_label == "system"
    # Nothing left to decide: the review completed with its evidence.
    assert review.status == "completed" and review.evidence_pdf_key
    (escalated,) = events("access_review.escalated")
    assert escalated.data["suspended"] == [f"Idle Person <{idle.email}>"]


def test_the_monthly_campaign_starts_once_on_the_first(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    make_user(role="admin")
    make_user(role="agent")
    first = utcnow().replace(day=1, hour=3)
    monkeypatch.setattr(review_tasks, "utcnow", lambda: first)

    assert review_tasks.monthly_review().startswith("started")
    assert review_tasks.monthly_review() == "exists"

    review = db.session.scalar(select(AccessReview))
    assert review.period == f"{first:%Y-%m}"
    assert review.started_by_id is None and review.roster_count == 2
    assert db.session.scalar(select(func.count()).select_from(AccessReview)) == 1

    monkeypatch.setattr(review_tasks, "utcnow", lambda: first.replace(day=2))
    assert review_tasks.monthly_review() == "not the 1st"


def test_a_decision_awaiting_confirmation_is_escalated_not_suspended(settings) -> None:  # type: ignore[no-untyped-def]
    settings(ACCESS_REVIEW_SUSPEND_UNDECIDED=True)
    admin = make_user(role="admin")
    make_user(role="admin")
    kept = make_user(role="agent")
    review = start(admin)
    reviews.decide(item_of(review, kept), admin, "keep")  # never confirmed
    _due_in(review, timedelta(seconds=-1))

    review_tasks.escalate_overdue()

    db.session.expire_all()
    assert kept.is_active
    item = item_of(review, kept)
    assert item.decision == "keep" and item.applied_at is None and item.reviewer_id is None
    assert review.status == "open"
    reviews.confirm(review, admin)
    assert item_of(review, kept).outcome == "kept; nothing changed"


def test_the_sweep_job_reminds_and_escalates_in_one_run() -> None:
    admin = make_user(role="admin")
    make_user(role="agent")
    soon = start(admin, title="Due soon")
    late = start(admin, title="Overdue")
    _due_in(soon, timedelta(days=1))
    _due_in(late, timedelta(seconds=-1))

    assert review_tasks.review_sweep() == "1 reminder(s), 1 campaign(s) escalated"
    assert review_tasks.review_sweep() == "0 reminder(s), 0 campaign(s) escalated"
    subjects = [m.subject for m in outbox(admin.email)]
    assert subjects == [
        f"Access review due {soon.due_at:%Y-%m-%d}: Due soon",
        "Access review overdue: Overdue",
    ]
