"""Deactivation, role changes, lockout, rate limits and resets: all take effect at once."""

from datetime import timedelta

from portal.audits.models import AuditEvent
from portal.extensions import db
from portal.timeutil import utcnow
from portal.users.models import User, UserSession
from tests.factories import PASSWORD, make_user, sign_in_client


def _actions():
    return [e.action for e in db.session.scalars(db.select(AuditEvent).order_by(AuditEvent.id))]


def _login(client, email, password=PASSWORD):
    return client.post("/login", data={"email": email, "password": password})


def test_deactivated_user_loses_access_on_next_request(app, client, as_role):
    as_role("admin")
    target = make_user(role="agent")
    theirs = app.test_client()
    sign_in_client(theirs, target)
    assert theirs.get("/").status_code == 200

    response = client.post(f"/users/{target.id}/deactivate")
    assert response.status_code == 302
    assert theirs.get("/").status_code == 302  # back to the sign-in page
    assert _login(app.test_client(), target.email).status_code == 422
    event = db.session.scalar(db.select(AuditEvent).where(AuditEvent.action == "user.deactivated"))
    assert event.data == {"before": {"status": "active"}, "after": {"status": "deactivated"}}

    assert client.post(f"/users/{target.id}/reactivate").status_code == 302
    assert _login(app.test_client(), target.email).status_code == 302


def test_role_change_takes_effect_on_the_next_request(app, client, as_role):
    as_role("admin")
    target = make_user(role="admin")
    theirs = app.test_client()
    sign_in_client(theirs, target)
    assert theirs.get("/users/").status_code == 200
    assert client.post(f"/users/{target.id}/role", data={"role": "requester"}).status_code == 302
    assert theirs.get("/users/").status_code == 403
    event = db.session.scalar(db.select(AuditEvent).where(AuditEvent.action == "user.role_changed"))
    assert event.data == {"before": {"role": "admin"}, "after": {"role": "requester"}}


def test_the_last_admin_cannot_be_demoted_or_deactivated(client, as_role):
    admin = as_role("admin")
    db.session.execute(db.update(User).where(User.id != admin.id).values(is_active=False))
    db.session.commit()
    refused = client.post(f"/users/{admin.id}/role", data={"role": "agent"})
    assert refused.status_code == 409 and "last active admin" in refused.text
    assert client.post(f"/users/{admin.id}/deactivate").status_code == 409


def test_five_failures_lock_the_account_and_admin_unlocks(app, client, as_role):
    target = make_user(role="agent", email="lock@example.com")
    anonymous = app.test_client()
    for _ in range(5):
        assert _login(anonymous, "lock@example.com", "wrong-wrong-wrong").status_code == 422
    locked = _login(anonymous, "lock@example.com")  # even the right password
    assert locked.status_code == 422 and "locked" in locked.text
    db.session.refresh(target)
    assert target.is_locked
    assert target.locked_until - utcnow() > timedelta(minutes=14)
    assert _actions().count("auth.login_failed") == 6
    assert "auth.locked" in _actions()

    as_role("admin")
    assert client.post(f"/users/{target.id}/unlock").status_code == 302
    assert _login(anonymous, "lock@example.com").status_code == 302
    assert "user.unlocked" in _actions()


def test_failures_older_than_the_window_do_not_count(app, ctx):
    target = make_user(email="slow@example.com")
    anonymous = app.test_client()
    for _ in range(4):
        _login(anonymous, "slow@example.com", "wrong-wrong-wrong")
    target.first_failed_login_at = utcnow() - timedelta(minutes=61)
    db.session.commit()
    _login(anonymous, "slow@example.com", "wrong-wrong-wrong")
    db.session.refresh(target)
    assert not target.is_locked and target.failed_logins == 1


def test_login_form_is_rate_limited_per_ip(app, settings):
    settings(LOGIN_RATE_LIMIT="3 per minute")
    anonymous = app.test_client()
    codes = [_login(anonymous, "x@example.com", "whatever-whatever").status_code for _ in range(4)]
    assert codes[:3] == [422, 422, 422]
    assert codes[3] == 429
    limited = _login(anonymous, "x@example.com", "whatever-whatever")
    assert limited.status_code == 429
    assert int(limited.headers["Retry-After"]) > 0
    assert "Too many requests" in limited.text
    # Another address is not affected.
    other = anonymous.post(
        "/login",
        data={"email": "x@example.com", "password": "p"},
        environ_base={"REMOTE_ADDR": "10.9.9.9"},
    )
    assert other.status_code == 422


def test_admin_reset_shows_password_once_and_forces_a_change(app, client, as_role):
    as_role("admin")
    target = make_user(role="agent", email="temp@example.com")
    theirs = app.test_client()
    sign_in_client(theirs, target)
    response = client.post(f"/users/{target.id}/reset-password")
    assert response.status_code == 200
    temporary = response.text.split('id="temporary-password">')[1].split("<")[0].strip()
    assert len(temporary) >= 12
    assert theirs.get("/").status_code == 302  # old sessions ended
    event = db.session.scalar(
        db.select(AuditEvent).where(AuditEvent.action == "user.password_reset_by_admin")
    )
    assert temporary not in str(event.data) and event.data["after"]["password"].startswith("hmac:")

    person = app.test_client()
    assert _login(person, "temp@example.com", temporary).status_code == 302
    forced = person.get("/users/")
    assert forced.status_code == 302 and forced.headers["Location"] == "/account/password"
    assert person.get("/").headers["Location"] == "/account/password"
    changed = person.post(
        "/account/password",
        data={
            "current_password": temporary,
            "password": "fresh-garden-hose-77",
            "confirm": "fresh-garden-hose-77",
        },
    )
    assert changed.status_code == 302
    assert person.get("/").status_code == 200


def test_own_password_change_ends_other_sessions_but_not_this_one(app, client, as_role):
    me = as_role("agent")
    elsewhere = app.test_client()
    sign_in_client(elsewhere, me)
    response = client.post(
        "/account/password",
        data={
            "current_password": PASSWORD,
            "password": "new-kettle-pond-31",
            "confirm": "new-kettle-pond-31",
        },
    )
    assert response.status_code == 302
    assert client.get("/").status_code == 200
    assert elsewhere.get("/").status_code == 302
    wrong = client.post(
        "/account/password",
        data={
            "current_password": "not-it-at-all",
            "password": "x-new-kettle-pond-32",
            "confirm": "x-new-kettle-pond-32",
        },
    )
    assert wrong.status_code == 422 and "current password is not correct" in wrong.text


def test_my_sessions_end_one_and_end_others(app, client, as_role):
    me = as_role("auditor")
    other = app.test_client()
    sign_in_client(other, me)
    page = client.get("/account/sessions")
    assert page.status_code == 200 and "this session" in page.text
    assert client.post("/account/sessions/end-others").status_code == 302
    assert other.get("/").status_code == 302
    assert client.get("/").status_code == 200
    mine = db.session.scalar(
        db.select(UserSession).where(UserSession.user_id == me.id, UserSession.revoked_at.is_(None))
    )
    stranger = make_user()
    theirs = app.test_client()
    sign_in_client(theirs, stranger)
    foreign = db.session.scalar(db.select(UserSession).where(UserSession.user_id == stranger.id))
    assert client.post(f"/account/sessions/{foreign.id}/end").status_code == 404
    assert client.post(f"/account/sessions/{mine.id}/end").status_code == 302
    assert client.get("/").status_code == 302


def test_admin_ends_everyone_elses_sessions(app, client, as_role):
    as_role("admin")
    others = []
    for role in ("agent", "requester"):
        c = app.test_client()
        sign_in_client(c, make_user(role=role))
        others.append(c)
    assert client.post("/users/sessions/end-everyone-else").status_code == 302
    assert all(c.get("/").status_code == 302 for c in others)
    assert client.get("/").status_code == 200
    assert "session.ended_everyone" in _actions()


def test_idle_session_expires(app, client, as_role, settings):
    me = as_role("agent")
    row = db.session.scalar(db.select(UserSession).where(UserSession.user_id == me.id))
    row.last_seen_at = utcnow() - timedelta(hours=13)
    db.session.commit()
    assert client.get("/").status_code == 302
