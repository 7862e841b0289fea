"""The security page: each figure of the last 24 hours after its events, empty states,
links into the audit log, a fixed number of queries; refusals recorded (403 as
`auth.forbidden`, 429 as counters); the alert banner and acknowledging alerts."""

from __future__ import annotations

import re
from datetime import timedelta
from html import unescape

import pytest
from sqlalchemy import func, select

from portal.audits import alerts
from portal.audits.models import AuditEvent
from portal.audits.refusals import flush_rate_limit_hits
from portal.audits.security_models import RateLimitHit, SecurityAlert
from portal.audits.security_page import security_figures
from portal.extensions import db
from portal.timeutil import utcnow
from portal.users import services as user_services
from portal.users.models import User
from tests.conftest import csrf_token_from, row_counts
from tests.factories import PASSWORD, make_user, sign_in_client

PAGE = "/audits/security"


def table(html: str, table_id: str) -> str:
    """The text of one table of the page, tags dropped."""
    found = re.search(rf'<table[^>]*id="{table_id}".*?</table>', html, re.S)
    assert found, f"no table {table_id}"
    return unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", found[0])))


def links(html: str, table_id: str) -> list[str]:
    found = re.search(rf'<table[^>]*id="{table_id}".*?</table>', html, re.S)
    assert found
    return [unescape(href) for href in re.findall(r'href="([^"]+)"', found[0])]


def sign_in(app, email: str, password: str, ip: str) -> int:  # type: ignore[no-untyped-def]
    response = app.test_client().post(
        "/login", data={"email": email, "password": password}, environ_base={"REMOTE_ADDR": ip}
    )
    return response.status_code


@pytest.fixture
def seeded(app, settings):  # type: ignore[no-untyped-def]
    """One of each thing the page shows, made the way it happens for real."""
    settings(LOGIN_RATE_LIMIT="1000 per minute")
    with app.test_request_context("/"):
        admin = make_user(role="admin", email="chief@example.com")
        victim = make_user(role="agent", email="victim@example.com")
        traveller = make_user(role="agent", email="traveller@example.com")
        agent = make_user(role="agent", email="nosy@example.com")
    for _ in range(3):
        assert sign_in(app, "victim@example.com", "wrong-password-1", "203.0.113.5") == 422
    for _ in range(2):
        assert sign_in(app, "victim@example.com", "wrong-password-1", "203.0.113.6") == 422
    assert sign_in(app, "nobody@example.com", "wrong-password-1", "203.0.113.5") == 422
    # The victim is locked after five failures.
    assert sign_in(app, "traveller@example.com", PASSWORD, "192.0.2.10") == 302
    assert sign_in(app, "traveller@example.com", PASSWORD, "192.0.2.10") == 302
    with app.test_request_context("/"):
        user_services.change_role(
            make_user(role="agent", email="rising@example.com"), "admin", admin
        )
        user_services.unlock(db.session.get(User, victim.id), admin)
    nosy = app.test_client()
    with app.test_request_context("/"):
        sign_in_client(nosy, agent)
    assert nosy.get("/users/").status_code == 403
    assert nosy.post("/users/invitations", data={"email": "x@example.com"}).status_code == 403
    settings(LOGIN_RATE_LIMIT="1 per minute")
    for _ in range(4):
        sign_in(app, "anyone@example.com", "wrong-password-1", "198.51.100.77")
    return {"admin": admin, "victim": victim, "traveller": traveller, "agent": agent}


def test_each_figure_appears_after_its_events(app, client, seeded):
    with app.test_request_context("/"):
        sign_in_client(client, make_user(role="auditor"))
    response = client.get(PAGE)
    assert response.status_code == 200
    html = response.text

    accounts = table(html, "failed-by-account")
    assert "victim@example.com 5 2" in accounts  # five failures from two addresses
    assert "nobody@example.com no such account 1 1" in accounts
    assert (
        f"/audits/?action=auth.login_failed&type=user&id={seeded['victim'].id}&from="
        in links(html, "failed-by-account")[0]
    )

    by_ip = table(html, "failed-by-ip")
    assert "203.0.113.5 4 2" in by_ip and "203.0.113.6 2 1" in by_ip
    assert "198.51.100.77 1 1" in by_ip  # its one attempt before the limit
    assert any("ip=203.0.113.5" in link for link in links(html, "failed-by-ip"))

    assert "victim@example.com 1" in table(html, "lockouts")

    refused = table(html, "forbidden")
    assert "nosy@example.com users.user_list /users/ 1" in refused
    assert "nosy@example.com users.invitations /users/invitations 1" in refused
    assert f"actor={seeded['agent'].id}&action=auth.forbidden" in links(html, "forbidden")[0]

    assert "198.51.100.77 3 1" in table(html, "rate-limited")  # three 429s, one hour

    new_admins = table(html, "new-admins")
    assert "rising@example.com user.role_changed chief@example.com" in new_admins

    actions = table(html, "admin-actions")
    assert "chief@example.com user.role_changed 1" in actions
    assert "chief@example.com user.unlocked 1" in actions
    assert "auth." not in actions

    new_addresses = table(html, "new-addresses")
    assert "traveller@example.com 192.0.2.10 2" in new_addresses
    # Only the first sign-in from an address is new: a second day there would not be.
    assert "203.0.113.5" not in new_addresses


def test_an_address_used_before_the_window_is_not_new(app, ctx, settings):
    settings(LOGIN_RATE_LIMIT="1000 per minute")
    make_user(email="regular@example.com")
    assert sign_in(app, "regular@example.com", PASSWORD, "192.0.2.20") == 302
    figures = security_figures()
    assert [(r.actor_label, r.ip, r.sign_ins) for r in figures.new_addresses] == [
        ("regular@example.com", "192.0.2.20", 1)
    ]
    assert sign_in(app, "regular@example.com", PASSWORD, "192.0.2.20") == 302
    assert sign_in(app, "regular@example.com", PASSWORD, "192.0.2.21") == 302
    first, second, _ = db.session.scalars(
        select(AuditEvent.created_at).where(AuditEvent.action == "auth.login")
    ).all()
    # Seen from the moment the window starts between the first and second sign-in: the
    # first one is then before the window, so its address is a known one.
    later = security_figures(now=first + (second - first) / 2 + timedelta(hours=24))
    assert [(r.ip, r.sign_ins) for r in later.new_addresses] == [("192.0.2.21", 1)]


def test_figures_cover_the_last_24_hours_only(seeded, app):
    with app.test_request_context("/"):
        figures = security_figures(now=utcnow() + timedelta(hours=25))
        assert figures.failed_by_account == figures.failed_by_ip == []
        assert figures.lockouts == figures.forbidden == figures.new_admins == []
        assert figures.admin_actions == figures.new_addresses == []
        assert figures.rate_limited == []
        today = security_figures()
        assert today.failed_by_account and today.rate_limited


def test_empty_page_says_so(client, as_role):
    as_role("auditor")
    html = client.get(PAGE).text
    for text in (
        "No alert has been raised.",
        "No failed sign-ins.",
        "No account was locked.",
        "No request was rate-limited.",
        "Nobody was made, invited or created as an admin.",
        "No admin changed anything.",
    ):
        assert text in html


def test_the_page_runs_a_fixed_number_of_queries(app, client, as_role, settings, count_queries):
    settings(LOGIN_RATE_LIMIT="1000 per minute")
    as_role("admin")
    make_user(email="target@example.com")

    def attack(n: int, ip: str) -> None:
        for i in range(n):
            sign_in(app, f"target{i % 3}@example.com", "wrong-password-1", ip)
        assert sign_in(app, "target@example.com", PASSWORD, ip) == 302

    attack(2, "192.0.2.1")
    alerts.chain_broken("row 1: edited")
    client.get(PAGE)  # the session's first-request work and shared values, out of the count
    with count_queries() as few:
        assert client.get(PAGE).status_code == 200
    attack(8, "192.0.2.2")
    attack(8, "192.0.2.3")
    with app.test_request_context("/"):
        alerts.raise_alert("large_export", "export:1", utcnow(), "Big export", {})
        db.session.commit()
    client.get(PAGE)  # shared values (blocked addresses, the banner) cached again
    with count_queries() as many:
        assert client.get(PAGE).status_code == 200
    assert many.count == few.count, many.statements


def test_only_admins_and_auditors_open_the_page(client, as_role):
    as_role("agent")
    assert client.get(PAGE).status_code == 403


def test_a_refused_request_is_recorded_as_auth_forbidden(app, client, as_role):
    agent = as_role("agent", email="curious@example.com")
    before = db.session.scalar(select(func.max(AuditEvent.id))) or 0
    assert (
        client.post(
            "/users/invitations", data={"email": "a@example.com", "role": "admin"}
        ).status_code
        == 403
    )
    db.session.expire_all()
    [event] = db.session.scalars(select(AuditEvent).where(AuditEvent.id > before)).all()
    assert event.action == "auth.forbidden"
    assert event.actor_id == agent.id and event.target_type == "user"
    assert event.target_id == str(agent.id)
    assert event.data == {
        "method": "POST",
        "path": "/users/invitations",
        "endpoint": "users.invitations",
    }
    # Nothing else was written: row_counts leaves these events out, so it reads as equal.
    counts = row_counts()
    assert client.get("/users/").status_code == 403
    assert row_counts() == counts


def test_rate_limited_requests_are_counted_per_address_and_hour(app, client, as_role, settings):
    settings(LOGIN_RATE_LIMIT="2 per minute")
    visitor = app.test_client()
    codes = [
        visitor.post(
            "/login",
            data={"email": "z@example.com", "password": "x-y-z-w"},
            environ_base={"REMOTE_ADDR": "198.51.100.9"},
        ).status_code
        for _ in range(7)
    ]
    assert codes == [422, 422, 429, 429, 429, 429, 429]
    db.session.expire_all()
    # The first hit wrote its row at once; the next ones wait in Redis for the next flush.
    [row] = db.session.scalars(select(RateLimitHit)).all()
    assert (row.ip, row.hits) == ("198.51.100.9", 1)
    assert row.hour == utcnow().replace(minute=0, second=0, microsecond=0)
    as_role("auditor")
    assert "198.51.100.9 5 1" in table(client.get(PAGE).text, "rate-limited")
    with app.test_request_context("/"):
        assert flush_rate_limit_hits() == 4
    db.session.expire_all()
    assert db.session.scalar(select(RateLimitHit.hits)) == 5
    assert "198.51.100.9 5 1" in table(client.get(PAGE).text, "rate-limited")
    # No audit event per 429.
    assert not db.session.scalar(select(func.count()).where(AuditEvent.action == "auth.forbidden"))


def test_the_audit_log_links_to_the_security_page(client, as_role):
    as_role("auditor")
    assert 'href="/audits/security"' in client.get("/audits/").text


# -- banner and acknowledging ----------------------------------------------------------------


def _raise(subject: str = "The audit chain is broken") -> SecurityAlert:
    alerts.raise_alert("chain_broken", subject, utcnow(), subject, {"summary": "row 4"})
    db.session.commit()
    return db.session.scalar(select(SecurityAlert).where(SecurityAlert.subject == subject))


def test_admins_see_the_banner_others_do_not(app, client, as_role):
    with app.test_request_context("/"):
        _raise()
    as_role("agent")
    assert 'id="security-alert-banner"' not in client.get("/tickets/").text
    as_role("auditor")
    assert 'id="security-alert-banner"' not in client.get("/audits/").text
    as_role("admin")
    html = client.get("/tickets/").text
    assert 'id="security-alert-banner"' in html
    assert "1 security alert to acknowledge" in html
    assert "The audit chain is broken" in html


def test_the_banner_asks_nothing_of_the_database_for_non_admins(
    app, client, as_role, count_queries
):
    with app.test_request_context("/"):
        _raise()
    as_role("agent")
    client.get("/tickets/")
    with count_queries() as counted:
        client.get("/tickets/")
    assert not any("security_alerts" in s for s in counted.statements)


def test_acknowledging_an_alert_is_audited_and_ends_the_banner(app, client, as_role, csrf):
    with app.test_request_context("/"):
        alert = _raise()
        old = _raise("Old news")
        old.raised_at = utcnow() - timedelta(days=8)  # older than the banner's week
        db.session.commit()
    admin = as_role("admin", email="acker@example.com")
    page = client.get(PAGE).text
    assert f'id="alert-{alert.id}"' in page and "Acknowledge" in page
    assert "1 security alert to acknowledge" in page
    token = csrf_token_from(page)
    url = f"/audits/security/alerts/{alert.id}/acknowledge"
    assert client.post(url).status_code == 400  # no CSRF token
    response = client.post(url, data={"csrf_token": token})
    assert response.status_code == 302 and response.headers["Location"].endswith(PAGE)
    db.session.expire_all()
    alert = db.session.get(SecurityAlert, alert.id)
    assert alert.acknowledged_by_id == admin.id and alert.acknowledged_at is not None
    event = db.session.scalar(
        select(AuditEvent).where(AuditEvent.action == "security.alert_acknowledged")
    )
    assert event.actor_id == admin.id and event.target_id == str(alert.id)
    html = client.get(PAGE).text
    assert 'id="security-alert-banner"' not in html
    assert "acker@example.com" in table(html, "security-alerts")
    # A second press changes nothing.
    client.post(url, data={"csrf_token": token})
    assert (
        db.session.scalar(
            select(func.count()).where(AuditEvent.action == "security.alert_acknowledged")
        )
        == 1
    )


def test_auditors_see_alerts_without_acknowledge_buttons(app, client, as_role):
    with app.test_request_context("/"):
        alert = _raise()
    as_role("auditor")
    html = client.get(PAGE).text
    assert f'id="alert-{alert.id}"' in html and "not yet" in html
    assert "/acknowledge" not in html
    assert client.post(f"/audits/security/alerts/{alert.id}/acknowledge").status_code == 403


def test_acknowledging_an_unknown_alert_is_404(client, as_role):
    as_role("admin")
    assert client.post("/audits/security/alerts/999999/acknowledge").status_code == 404
