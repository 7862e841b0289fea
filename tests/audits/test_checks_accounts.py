"""The weekly and monthly account checks, each with a data set where it finds something
and one where it finds nothing: dormant accounts, stale invitations, the admin review,
long-lived sessions, the permission audit."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from portal.extensions import db
from portal.timeutil import utcnow
from portal.users import auth
from portal.users import services as user_services
from portal.users.models import Invitation, UserSession
from tests.audits.check_helpers import run_check, subjects
from tests.factories import make_user

LONG_AGO = timedelta(days=400)


def test_dormant_accounts_finds_active_accounts_unused_for_90_days(ctx) -> None:  # type: ignore[no-untyped-def]
    now = utcnow()
    idle = make_user(role="agent", created_at=now - LONG_AGO, last_login_at=now - LONG_AGO)
    never = make_user(role="requester", created_at=now - LONG_AGO)
    make_user(
        role="agent", created_at=now - LONG_AGO, last_login_at=now - LONG_AGO, is_active=False
    )
    make_user(role="agent", created_at=now - timedelta(days=10))  # new, not yet signed in
    outcome = run_check("dormant_accounts", now)
    assert subjects(outcome) == {f"user:{idle.id}", f"user:{never.id}"}
    titles = {d.subject_key: d.title for d in outcome.drafts}
    assert titles[f"user:{never.id}"] == f"{never.email} has never signed in"
    assert outcome.total == 3 and outcome.passed == 1


def test_dormant_accounts_finds_nothing_when_everyone_signs_in(ctx) -> None:  # type: ignore[no-untyped-def]
    now = utcnow()
    make_user(role="agent", created_at=now - LONG_AGO, last_login_at=now - timedelta(days=20))
    outcome = run_check("dormant_accounts", now)
    assert outcome.drafts == [] and outcome.passed == outcome.total == 1


def test_stale_invitations_finds_invitations_unanswered_for_a_week(ctx) -> None:  # type: ignore[no-untyped-def]
    admin = make_user(role="admin")
    stale = user_services.invite("late@example.com", "agent", admin)
    fresh = user_services.invite("fresh@example.com", "agent", admin)
    db.session.execute(
        update(Invitation)
        .where(Invitation.id == stale.id)
        .values(created_at=utcnow() - timedelta(days=30))
    )
    db.session.commit()
    outcome = run_check("stale_invitations", utcnow())
    assert subjects(outcome) == {f"invitation:{stale.id}"}
    assert outcome.drafts[0].rows[0]["email"] == "late@example.com"
    assert outcome.total == 2 and fresh.id != stale.id


def test_stale_invitations_finds_nothing_once_answered(ctx) -> None:  # type: ignore[no-untyped-def]
    admin = make_user(role="admin")
    old = user_services.invite("late@example.com", "agent", admin)
    user_services.revoke_invitation(old, admin)
    db.session.execute(
        update(Invitation)
        .where(Invitation.id == old.id)
        .values(created_at=utcnow() - timedelta(days=30))
    )
    db.session.commit()
    outcome = run_check("stale_invitations", utcnow())
    assert outcome.drafts == [] and outcome.total == 0


def test_admin_review_finds_idle_and_compromised_admins(ctx) -> None:  # type: ignore[no-untyped-def]
    now = utcnow()
    idle = make_user(
        role="admin", created_at=now - LONG_AGO, last_login_at=now - timedelta(days=45)
    )
    compromised = make_user(
        role="admin", created_at=now - LONG_AGO, last_login_at=now, compromised_at=now
    )
    make_user(role="admin", created_at=now - LONG_AGO, last_login_at=now - timedelta(days=2))
    make_user(role="agent", created_at=now - LONG_AGO)  # idle, but no admin
    outcome = run_check("admin_review", now + timedelta(days=7))
    assert subjects(outcome) == {f"user:{idle.id}", f"user:{compromised.id}"}
    severity = {d.subject_key: d.severity for d in outcome.drafts}
    assert severity[f"user:{compromised.id}"] == "high"
    assert outcome.total == 3


def test_admin_review_finds_nothing_when_admins_use_the_role(ctx) -> None:  # type: ignore[no-untyped-def]
    now = utcnow()
    make_user(role="admin", created_at=now - LONG_AGO, last_login_at=now - timedelta(days=1))
    outcome = run_check("admin_review", now + timedelta(days=7))
    assert outcome.drafts == [] and outcome.total == 1


def _session_opened(user, days_ago: int) -> UserSession:  # type: ignore[no-untyped-def]
    auth._open_session(user, "10.0.0.5", "pytest")
    db.session.commit()
    session = auth.open_sessions(user)[0]
    session.created_at = utcnow() - timedelta(days=days_ago)
    db.session.commit()
    return session


def test_long_sessions_finds_sessions_older_than_their_maximum(app, ctx) -> None:  # type: ignore[no-untyped-def]
    max_days = app.config["SETTINGS"].SESSION_MAX_DAYS
    old = _session_opened(make_user(role="agent"), max_days + 20)
    _session_opened(make_user(role="agent"), 1)
    outcome = run_check("long_sessions", utcnow() + timedelta(days=7))
    assert subjects(outcome) == {f"session:{old.id}"}
    assert outcome.drafts[0].rows[0]["user_id"] == old.user_id
    assert outcome.total == 2


def test_long_sessions_finds_nothing_when_sessions_end_in_time(app, ctx) -> None:  # type: ignore[no-untyped-def]
    _session_opened(make_user(role="agent"), 1)
    outcome = run_check("long_sessions", utcnow() + timedelta(days=7))
    assert outcome.drafts == [] and outcome.total == 1


def test_permission_audit_shows_who_holds_what_and_what_does_not_fit(ctx) -> None:  # type: ignore[no-untyped-def]
    make_user(role="admin")
    make_user(role="agent")
    make_user(role="agent")
    odd = make_user(role="superuser")  # no such role: it holds nothing, yet it is there
    gone = make_user(role="agent")
    _session_opened(gone, 1)
    gone.is_active = False
    db.session.commit()
    outcome = run_check("permission_audit", utcnow())
    roles = {r["role"]: r for r in outcome.details["roles"]}
    assert roles["agent"]["accounts"] == 2 and roles["admin"]["accounts"] == 1
    assert "audits:read" in roles["auditor"]["permissions"]
    assert len(roles["admin"]["holders"]) == 1 and roles["agent"]["holders"] == []
    assert subjects(outcome) == {f"user:{odd.id}", f"user:{gone.id}:sessions"}


def test_permission_audit_finds_nothing_when_every_account_fits(ctx) -> None:  # type: ignore[no-untyped-def]
    make_user(role="admin")
    make_user(role="agent", is_active=False)  # deactivated, no session left
    outcome = run_check("permission_audit", utcnow())
    assert outcome.drafts == [] and outcome.total == 1
    assert {r["role"] for r in outcome.details["roles"]} >= {"admin", "auditor"}
