"""Security alerts: each condition raises once per window, with one email per security
contact and a `security.alert` event; the same condition again in the window raises
nothing new."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from portal.audits import alerts
from portal.audits.models import AuditEvent
from portal.audits.security_models import SecurityAlert
from portal.extensions import db
from portal.mail import OutboxMessage
from portal.reports import services as export_services
from portal.tickets import services as ticket_services
from portal.timeutil import utcnow
from portal.users import services as user_services
from tests.factories import make_user

CONTACTS = ["soc@example.com", "ciso@example.com"]
ATTACKER_IP = "203.0.113.7"


@pytest.fixture(autouse=True)
def contacts(settings):  # type: ignore[no-untyped-def]
    # Many attempts from one address: the per-IP sign-in limit is not what is tested here.
    settings(SECURITY_CONTACTS=" , ".join(CONTACTS), LOGIN_RATE_LIMIT="1000 per minute")


def clear_of_the_turn(period: timedelta, margin: float = 5.0) -> None:
    """Wait out the last seconds of the current hour (or day), so the attempts of one
    test fall in one window."""
    now = utcnow()
    start = now.replace(minute=0, second=0, microsecond=0)
    if period >= timedelta(days=1):
        start = start.replace(hour=0)
    left = (start + period - now).total_seconds()
    if left < margin:
        time.sleep(left + 0.1)


def sign_in_fails(app, email: str, ip: str = ATTACKER_IP) -> None:  # type: ignore[no-untyped-def]
    response = app.test_client().post(
        "/login",
        data={"email": email, "password": "not-the-password"},
        environ_base={"REMOTE_ADDR": ip},
    )
    assert response.status_code == 422, response.status_code


def raised(kind: str | None = None) -> list[SecurityAlert]:
    db.session.expire_all()
    stmt = select(SecurityAlert).order_by(SecurityAlert.id)
    if kind:
        stmt = stmt.where(SecurityAlert.kind == kind)
    return list(db.session.scalars(stmt))


def alert_emails() -> list[OutboxMessage]:
    return list(
        db.session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.subject.startswith("[Ops Portal security]"))
            .order_by(OutboxMessage.id)
        )
    )


def alert_events() -> int:
    return db.session.scalar(select(func.count()).where(AuditEvent.action == "security.alert"))  # type: ignore[return-value]


def test_six_failed_sign_ins_for_one_account_raise_one_alert(app, ctx):
    victim = make_user(role="agent", email="victim@example.com")
    clear_of_the_turn(timedelta(hours=1))
    for _ in range(5):
        sign_in_fails(app, "victim@example.com")
    assert raised() == []  # five is the lockout, not yet an alert

    sign_in_fails(app, "Victim@Example.com")
    [alert] = raised()
    assert alert.kind == "failed_sign_ins.account" and alert.key == f"user:{victim.id}"
    assert alert.subject == "6 failed sign-ins for victim@example.com in the last hour"
    assert alert.window_start == utcnow().replace(minute=0, second=0, microsecond=0)
    emails = alert_emails()
    assert sorted(m.to for m in emails) == sorted(CONTACTS)
    assert all(alert.subject in m.subject for m in emails)
    assert "http://portal.test/audits/security" in emails[0].body
    assert alert_events() == 1

    sign_in_fails(app, "victim@example.com")  # the 7th, same window
    assert len(raised()) == 1
    assert len(alert_emails()) == 2
    assert alert_events() == 1


def test_failures_for_an_unknown_address_count_as_one_account(app, ctx):
    clear_of_the_turn(timedelta(hours=1))
    for _ in range(6):
        sign_in_fails(app, "ghost@example.com")
    [alert] = raised()
    assert alert.key == "email:ghost@example.com"


def test_twenty_one_failures_from_one_address_raise_one_alert(app, ctx):
    clear_of_the_turn(timedelta(hours=1))
    for n in range(20):
        sign_in_fails(app, f"spray{n}@example.com")
    assert raised() == []

    sign_in_fails(app, "spray20@example.com")
    [alert] = raised()
    assert alert.kind == "failed_sign_ins.ip" and alert.key == f"ip:{ATTACKER_IP}"
    assert alert.subject == f"21 failed sign-ins from {ATTACKER_IP} in the last hour"
    assert sorted(m.to for m in alert_emails()) == sorted(CONTACTS)

    sign_in_fails(app, "spray21@example.com")
    sign_in_fails(app, "spray22@example.com", ip="198.51.100.1")  # another address: quiet
    assert len(raised()) == 1 and len(alert_emails()) == 2


def test_a_new_admin_raises_an_alert(ctx):
    admin = make_user(role="admin", email="boss@example.com")
    promoted = make_user(role="agent", email="promoted@example.com")
    user_services.change_role(make_user(role="agent"), "approver", admin)
    assert raised() == []

    user_services.change_role(promoted, "admin", admin)
    [alert] = raised()
    assert alert.kind == "new_admin" and alert.key == f"user:{promoted.id}"
    assert alert.subject == "New admin: promoted@example.com made admin by boss@example.com"
    assert sorted(m.to for m in alert_emails()) == sorted(CONTACTS)
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "security.alert"))
    assert event.target_type == "securityalert" and event.target_id == str(alert.id)
    assert event.data["kind"] == "new_admin"

    invitation = user_services.invite("newboss@example.com", "admin", admin)
    assert raised()[-1].key == f"invitation:{invitation.id}"
    assert raised()[-1].subject.startswith("New admin: newboss@example.com invited as admin")
    assert len(alert_emails()) == 4


def test_an_export_of_more_rows_than_the_limit_raises_an_alert(ctx, settings, tmp_path):
    settings(EXPORT_ALERT_ROWS=2, STORAGE_DIR=str(tmp_path))
    admin = make_user(role="admin", email="exporter@example.com")
    requester = make_user()
    for n in range(2):
        ticket_services.create_ticket(requester, f"Ticket {n}", "Body")
    small = export_services.request_export("tickets", {}, admin)
    assert small.status == "done" and small.rows_done == 2
    assert raised() == []

    ticket_services.create_ticket(requester, "The third", "Body")
    large = export_services.request_export("tickets", {}, admin)
    assert large.status == "done" and large.rows_done == 3
    [alert] = raised()
    assert alert.kind == "large_export" and alert.key == f"export:{large.id}"
    assert alert.subject == "Export of 3 rows (tickets) by exporter@example.com"
    assert alert.detail["limit"] == 2
    assert sorted(m.to for m in alert_emails()) == sorted(CONTACTS)


def test_no_export_alert_when_the_limit_is_off(ctx, settings, tmp_path):
    settings(EXPORT_ALERT_ROWS=0, STORAGE_DIR=str(tmp_path))
    admin = make_user(role="admin")
    ticket_services.create_ticket(make_user(), "Only one", "Body")
    assert export_services.request_export("tickets", {}, admin).status == "done"
    assert raised() == []


def test_a_broken_chain_alerts_once_a_day(ctx):
    clear_of_the_turn(timedelta(days=1))
    alerts.chain_broken("row 12: edited: its contents no longer match its hash")
    alerts.chain_broken("row 12: edited; row 40: missing")
    [alert] = raised()
    assert alert.kind == "chain_broken"
    assert alert.window_start == utcnow().replace(hour=0, minute=0, second=0, microsecond=0)
    emails = alert_emails()
    assert len(emails) == 2
    assert "row 12: edited: its contents no longer match its hash" in emails[0].body
    # chain_broken commits itself: the alert is not left in a transaction to roll back.
    db.session.rollback()
    assert len(raised()) == 1


def test_raise_alert_is_once_per_condition_and_window(ctx):
    window = utcnow().replace(minute=0, second=0, microsecond=0)
    assert alerts.raise_alert("chain_broken", "k", window, "First", {}) is True
    assert alerts.raise_alert("chain_broken", "k", window, "Again", {}) is False
    assert alerts.raise_alert("chain_broken", "k", window - timedelta(hours=1), "Earlier", {})
    assert alerts.raise_alert("large_export", "k", window, "Other kind", {})
    db.session.commit()
    assert [a.subject for a in raised()] == ["First", "Earlier", "Other kind"]


def test_a_subject_is_one_line_whatever_was_typed(ctx):
    alerts.raise_alert("large_export", "k", utcnow(), "6 failed for a@b\r\nBcc: x@evil", {})
    db.session.commit()
    assert raised()[0].subject == "6 failed for a@b Bcc: x@evil"
    assert all("\n" not in m.subject for m in alert_emails())


def test_without_contacts_the_alert_is_raised_and_no_email_sent(ctx, settings):
    settings(SECURITY_CONTACTS="")
    alerts.chain_broken("row 3: missing")
    assert len(raised()) == 1
    assert alert_emails() == []


RACERS = 4


def _racer(args: tuple[str, str, object]) -> bool:
    url, window, barrier = args
    from datetime import datetime

    from portal import create_app, jobs
    from tests.conftest import settings_for_tests

    app = create_app(settings_for_tests(DATABASE_URL=url, SECURITY_CONTACTS="soc@example.com"))
    with app.test_request_context("/"):
        barrier.wait()  # type: ignore[attr-defined]
        raised = alerts.raise_alert(
            "chain_broken", "audit_events", datetime.fromisoformat(window), "Race", {}
        )
        jobs.commit()
        db.session.remove()
        db.engine.dispose()
    return raised


def test_processes_racing_on_one_condition_raise_it_once():
    import multiprocessing

    from portal import create_app
    from tests.conftest import fresh_database_url, settings_for_tests

    url = fresh_database_url("alert_race")
    app = create_app(settings_for_tests(DATABASE_URL=url))
    with app.app_context():
        from flask_migrate import upgrade

        upgrade()
        db.session.remove()
        db.engine.dispose()
    window = utcnow().replace(minute=0, second=0, microsecond=0).isoformat()
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager:
        barrier = manager.Barrier(RACERS)
        with context.Pool(RACERS) as pool:
            results = pool.map(_racer, [(url, window, barrier)] * RACERS)
    assert sorted(results) == [False] * (RACERS - 1) + [True]
    with app.app_context():
        assert [a.subject for a in raised()] == ["Race"]
        assert alert_events() == 1
        assert [m.to for m in alert_emails()] == ["soc@example.com"]
        db.session.remove()
        db.engine.dispose()
