"""An account marked compromised: every session ends on its next request, the old
password stops working, sign-in is refused with its own message until a password reset
(an admin's temporary password or a reset link) clears the hold; the admin's page shows
the account's last 100 events and its sign-in attempts; nobody marks their own account."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from portal.audits import record
from portal.audits.models import AuditEvent
from portal.extensions import db
from portal.mail import OutboxMessage
from portal.users.auth import COMPROMISED_MESSAGE
from portal.users.models import User, UserSession
from tests.conftest import row_counts
from tests.factories import PASSWORD, make_user, sign_in_client

NEW = "sunny-harbour-lamp-58"
HX = {"HX-Request": "true"}


def events(action: str) -> list[AuditEvent]:
    return list(
        db.session.scalars(
            select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
        )
    )


@pytest.fixture
def victim(app, ctx):  # type: ignore[no-untyped-def]
    return make_user(role="agent", name="Vic Tim", email="vic@example.com")


@pytest.fixture
def victim_browser(app, victim):  # type: ignore[no-untyped-def]
    """The victim's browser, signed in and on a page."""
    browser = app.test_client()
    sign_in_client(browser, victim)
    assert browser.get("/tickets/").status_code == 200
    return browser


def mark(client, user: User, reason: str = "Password found in a paste") -> object:  # type: ignore[no-untyped-def]
    return client.post(f"/users/{user.id}/compromise", data={"reason": reason})


def test_marking_ends_every_session_at_the_next_request(
    app, client, as_role, victim, victim_browser
):
    second_browser = app.test_client()
    sign_in_client(second_browser, victim)
    admin = as_role("admin")
    response = mark(client, victim)
    assert response.status_code == 302
    page = client.get(response.headers["Location"])
    assert "Vic Tim is marked compromised: 2 session(s) ended" in page.text
    assert 'id="compromised-state"' in page.text

    # The open page's next click lands on the sign-in page; its htmx poll is sent there.
    click = victim_browser.get("/tickets/")
    assert click.status_code == 302 and click.headers["Location"].startswith("/login")
    poll = second_browser.get("/tickets/", headers=HX)
    assert poll.status_code == 401 and poll.headers["HX-Redirect"].startswith("/login")

    sessions = db.session.scalars(select(UserSession).where(UserSession.user_id == victim.id))
    assert {(s.revoked_at is not None, s.revoked_reason) for s in sessions} == {
        (True, "compromised")
    }
    db.session.refresh(victim)
    assert victim.compromised_at is not None and victim.password_hash is None
    (event,) = events("user.compromised")
    assert event.actor_id == admin.id
    assert (event.target_type, event.target_id) == ("user", str(victim.id))
    assert event.data["reason"] == "Password found in a paste"
    assert event.data["sessions_ended"] == 2


def test_sign_in_is_refused_with_its_message_until_a_reset(app, client, as_role, victim):
    as_role("admin")
    assert mark(client, victim).status_code == 302
    visitor = app.test_client()
    refused = visitor.post("/login", data={"email": victim.email, "password": PASSWORD})
    assert refused.status_code == 422
    assert COMPROMISED_MESSAGE in refused.text.replace("&#34;", '"')
    assert "may have been compromised" in refused.text
    # Any password gets the same answer, and none counts towards the lockout.
    for _ in range(6):
        visitor.post("/login", data={"email": victim.email, "password": "guess-guess-guess"})
    db.session.refresh(victim)
    assert victim.failed_logins == 0 and not victim.is_locked
    failed = events("auth.login_failed")
    assert [e.data["reason"] for e in failed] == ["compromised"] * 7
    assert all(e.target_id == str(victim.id) for e in failed)


def test_an_admins_temporary_password_clears_the_hold(app, client, as_role, victim):
    as_role("admin")
    mark(client, victim)
    page = client.post(f"/users/{victim.id}/reset-password")
    temporary = re.search(r'id="temporary-password">([^<]+)<', page.text).group(1)
    db.session.refresh(victim)
    assert victim.compromised_at is None
    visitor = app.test_client()
    old = visitor.post("/login", data={"email": victim.email, "password": PASSWORD})
    assert old.status_code == 422
    assert "do not match an active account" in old.text  # the hold is over; the password is not
    signed_in = visitor.post("/login", data={"email": victim.email, "password": temporary})
    assert signed_in.status_code == 302
    assert visitor.get("/").headers["Location"] == "/account/password"


def test_a_completed_reset_link_clears_the_hold_and_old_links_are_void(
    app, client, ctx, as_role, settings, victim
):
    settings(SELF_SERVICE_RESET=True)
    visitor = app.test_client()
    visitor.post("/password/forgot", data={"email": victim.email})
    sent_before = _reset_links(victim.email)
    as_role("admin")
    mark(client, victim)
    # A link sent before may sit in a mailbox the intruder reads: it no longer works.
    assert visitor.get(sent_before[0]).status_code == 410

    visitor.post("/password/forgot", data={"email": victim.email})
    fresh = _reset_links(victim.email)[-1]
    done = visitor.post(fresh, data={"password": NEW, "confirm": NEW})
    assert done.status_code == 302
    assert visitor.get("/").status_code == 200
    db.session.refresh(victim)
    assert victim.compromised_at is None
    again = app.test_client().post("/login", data={"email": victim.email, "password": NEW})
    assert again.status_code == 302


def _reset_links(email: str) -> list[str]:
    bodies = db.session.scalars(
        select(OutboxMessage.body).where(OutboxMessage.to == email).order_by(OutboxMessage.id)
    )
    return [re.search(r"http://portal\.test(/password/reset/\S+)", b).group(1) for b in bodies]


def test_an_admin_cannot_mark_their_own_account(client, as_role):
    me = as_role("admin")
    page = client.get(f"/users/{me.id}/compromise")
    assert page.status_code == 200
    assert "You cannot mark your own account compromised" in page.text
    assert 'id="compromise-form"' not in page.text
    before = row_counts()
    refused = mark(client, me)
    assert refused.status_code == 409
    assert "You cannot mark your own account compromised; ask another admin." in refused.text
    assert row_counts() == before
    assert client.get("/").status_code == 200  # still signed in


def test_marking_twice_is_refused(client, as_role, victim):
    as_role("admin")
    assert mark(client, victim).status_code == 302
    again = mark(client, victim)
    assert again.status_code == 409
    assert "already marked compromised" in again.text
    assert len(events("user.compromised")) == 1


@pytest.mark.parametrize(
    ("reason", "message"),
    [
        ("", "Say why the account is thought compromised."),
        ("   ", "Say why the account is thought compromised."),
        ("x" * 201, "Use at most 200 characters."),
        ("paste\x00bin", "Contains characters that are not allowed."),
    ],
    ids=["empty", "blank", "too-long", "nul"],
)
def test_a_reason_is_required(client, as_role, victim, reason, message):
    as_role("admin")
    before = row_counts()
    response = mark(client, victim, reason)
    assert response.status_code == 422
    assert re.search(rf'id="reason-error">{re.escape(message)}<', response.text)
    assert row_counts() == before
    db.session.refresh(victim)
    assert victim.compromised_at is None


def test_only_admins_mark_accounts(client, as_role, victim):
    as_role("auditor")
    assert client.get(f"/users/{victim.id}/compromise").status_code == 403
    assert mark(client, victim).status_code == 403
    assert client.get("/users/987654/compromise").status_code == 403
    as_role("admin")
    assert client.get("/users/987654/compromise").status_code == 404


# -- what the page shows -----------------------------------------------------------------------


def test_the_page_shows_the_last_100_events_by_or_about_the_person(app, client, as_role, victim):
    other = make_user(role="requester")
    for n in range(70):
        record("ticket.viewed", victim, ("ticket", n), n=n)  # as the actor
    for n in range(60):
        record("user.note", None, victim, n=n)  # as the target
    record("user.note", other, other)  # neither: not shown
    db.session.commit()
    as_role("admin")
    page = client.get(f"/users/{victim.id}/compromise").text
    table = re.search(r'<table class="table table-sm" id="recent-events">(.*?)</table>', page, re.S)
    rows = re.findall(r'<a href="/audits/(\d+)">', table.group(1))
    assert len(rows) == 100
    newest = db.session.scalars(
        select(AuditEvent.id)
        .where(
            (AuditEvent.actor_id == victim.id)
            | ((AuditEvent.target_type == "user") & (AuditEvent.target_id == str(victim.id)))
        )
        .order_by(AuditEvent.id.desc())
        .limit(100)
    ).all()
    assert [int(r) for r in rows] == newest
    assert "The 100 newest events by or about this person" in page


def test_the_page_shows_sign_in_attempts_by_account_and_by_email(app, client, as_role, victim):
    visitor = app.test_client()
    attacker = {"REMOTE_ADDR": "203.0.113.66", "HTTP_USER_AGENT": "stuffing-bot/1.0"}
    for _ in range(2):
        visitor.post(
            "/login", data={"email": victim.email, "password": "nope-nope-1"}, environ_base=attacker
        )
    assert visitor.post("/login", data={"email": victim.email, "password": PASSWORD}).status_code
    # A failure under the email before the account had it (named by the email typed).
    record("auth.login_failed", None, ("email", victim.email), email=victim.email, reason="x")
    record("auth.login_failed", None, ("email", "someone@else.example"), reason="x")
    db.session.commit()
    as_role("admin")
    page = client.get(f"/users/{victim.id}/compromise").text
    table = re.search(r'id="sign-in-attempts">.*?<tbody>(.*?)</tbody>', page, re.S).group(1)
    lines = re.findall(r"<tr>(.*?)</tr>", table, re.S)
    assert len(lines) == 4
    assert table.count("auth.login_failed") == 3 and table.count("<code>auth.login</code>") == 1
    assert "stuffing-bot/1.0" in table
    # Each address links to the blocked-addresses form, filled in.
    assert '<a href="/audits/blocks?network=203.0.113.66"' in table
    assert "wrong password" in table
    assert "someone@else.example" not in table


def test_the_user_page_links_to_it_and_shows_the_mark(client, as_role, victim):
    as_role("admin")
    detail = client.get(f"/users/{victim.id}").text
    assert f'href="/users/{victim.id}/compromise"' in detail
    assert "Account compromised…" in detail
    assert 'id="compromised-badge"' not in detail
    form_page = client.get(f"/users/{victim.id}/compromise").text
    assert 'data-confirm="Mark Vic Tim compromised?' in form_page
    mark(client, victim)
    detail = client.get(f"/users/{victim.id}").text
    assert 'id="compromised-badge"' in detail
