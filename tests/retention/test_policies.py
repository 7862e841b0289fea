"""Retention policies: the seeded defaults, editing one (audited), the page and the
dry run. The same tests run on SQLite and PostgreSQL."""

from __future__ import annotations

import secrets

from sqlalchemy import select

from portal.audits.models import AuditEvent
from portal.extensions import db
from portal.retention import policies
from portal.retention.models import RetentionPolicy
from portal.users.models import UserSession
from tests.factories import make_user
from tests.retention.helpers import ended_session, sent_mail


def _old_records() -> None:
    """Two sessions and two messages past 90 days, one of each within them, an open
    session and an unsent message, which never go."""
    user = make_user()
    for days in (91, 400, 10):
        ended_session(user, days)
    db.session.add(
        UserSession(token_hash=secrets.token_hex(32), user_id=user.id, password_version=1)
    )
    for days in (91, 400, 10):
        sent_mail(days)
    sent_mail(400, status="failed")
    db.session.commit()


def test_the_migration_seeds_the_runbooks_defaults(ctx):
    days = {p.kind: p.days for p in db.session.scalars(select(RetentionPolicy))}
    assert days == {
        "audit_events": 1095,
        "tickets": 2555,
        "change_requests": 2555,
        "sessions": 90,
        "sent_mail": 90,
    }


def test_what_would_go_is_counted_with_one_query_per_kind(ctx, count_queries):
    _old_records()
    with count_queries() as queries:
        due = {item.kind.key: item.count for item in policies.due_now()}
    assert due["sessions"] == 2
    assert due["sent_mail"] == 2
    assert due["tickets"] == 0
    assert queries.count == 1 + 5  # the policies, then one count per kind


def test_an_edit_is_audited_with_before_and_after(ctx):
    admin = make_user(role="admin")
    policies.set_days("sessions", 30, admin)
    policy = db.session.scalar(select(RetentionPolicy).where(RetentionPolicy.kind == "sessions"))
    assert (policy.days, policy.updated_by_id) == (30, admin.id)
    event = db.session.scalars(select(AuditEvent).order_by(AuditEvent.id.desc())).first()
    assert event.action == "retention.policy_changed"
    assert event.actor_id == admin.id
    assert event.data == {"kind": "sessions", "before": {"days": 90}, "after": {"days": 30}}


def test_the_page_shows_each_policy_and_what_would_go(app, client, as_role):
    with app.app_context():
        _old_records()
    as_role("auditor")
    response = client.get("/audits/retention")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "Ended sessions" in html and "Sent mail" in html and "Closed tickets" in html
    assert '<td class="text-end" id="due-sessions">2</td>' in html
    assert "EXPORT_RETENTION_DAYS" in html
    # Auditors read; they get no form to change a policy.
    assert 'name="days"' not in html


def test_an_admin_changes_a_policy_from_the_page(app, client, as_role):
    as_role("admin")
    response = client.post("/audits/retention", data={"kind": "sent_mail", "days": "30"})
    assert response.status_code == 302
    page = client.get("/audits/retention").get_data(as_text=True)
    assert "Sent mail are now kept 30 days." in page
    assert 'id="days-sent_mail"' in page and 'value="30"' in page
    with app.app_context():
        action = db.session.scalars(select(AuditEvent.action).order_by(AuditEvent.id.desc()))
        assert action.first() == "retention.policy_changed"


def test_a_bad_number_of_days_is_refused_at_its_field(app, client, as_role):
    as_role("admin")
    for days in ("0", "abc", "99999999"):
        response = client.post("/audits/retention", data={"kind": "tickets", "days": days})
        assert response.status_code == 422
        html = response.get_data(as_text=True)
        assert 'id="days-tickets-error"' in html
    response = client.post("/audits/retention", data={"kind": "nonsense", "days": "5"})
    assert response.status_code == 422
    assert "Choose a kind of record." in response.get_data(as_text=True)
    with app.app_context():
        assert (
            db.session.scalar(select(RetentionPolicy.days).where(RetentionPolicy.kind == "tickets"))
            == 2555
        )


def test_an_auditor_may_not_change_a_policy(client, as_role):
    as_role("auditor")
    response = client.post("/audits/retention", data={"kind": "tickets", "days": "5"})
    assert response.status_code == 403


def test_the_dry_run_lists_what_would_go_per_kind_and_changes_nothing(app):
    with app.app_context():
        _old_records()
        result = app.test_cli_runner().invoke(args=["retention", "run", "--dry-run"])
        assert result.exit_code == 0, result.output
        assert "sessions: 2 would go" in result.output
        assert "sent_mail: 2 would go" in result.output
        assert "tickets: 0 would go" in result.output
        assert "Dry run: 4 records would go" in result.output
        assert db.session.scalar(select(db.func.count()).select_from(UserSession)) >= 4
