import re
from datetime import timedelta

from portal.extensions import db
from portal.mail import OutboxMessage
from portal.users.models import PasswordReset
from tests.factories import make_user, sign_in_client

NEW = "sunny-harbour-lamp-58"


def _reset_link(email):
    message = db.session.scalars(db.select(OutboxMessage).where(OutboxMessage.to == email)).first()
    return re.search(r"http://portal\.test(/password/reset/\S+)", message.body).group(1)


def test_reset_is_off_unless_enabled(client):
    assert client.get("/password/forgot").status_code == 404
    assert "Forgot password?" not in client.get("/login").text


def test_same_answer_whether_or_not_the_account_exists(client, ctx, settings):
    settings(SELF_SERVICE_RESET=True)
    make_user(email="real@example.com")
    known = client.post("/password/forgot", data={"email": "real@example.com"})
    unknown = client.post("/password/forgot", data={"email": "ghost@example.com"})
    assert known.status_code == unknown.status_code == 200
    assert known.text == unknown.text
    assert db.session.scalar(db.select(db.func.count()).select_from(OutboxMessage)) == 1


def test_link_works_once_and_ends_other_sessions(app, client, ctx, settings):
    settings(SELF_SERVICE_RESET=True)
    user = make_user(email="forgetful@example.com")
    elsewhere = app.test_client()
    sign_in_client(elsewhere, user)
    client.post("/password/forgot", data={"email": "Forgetful@example.com"})
    path = _reset_link("forgetful@example.com")

    assert client.get(path).status_code == 200
    done = client.post(path, data={"password": NEW, "confirm": NEW})
    assert done.status_code == 302
    assert client.get("/").status_code == 200  # signed in by the reset
    assert elsewhere.get("/").status_code == 302  # the other session ended
    reused = app.test_client().get(path)
    assert reused.status_code == 410 and "already used" in reused.text
    login = app.test_client().post("/login", data={"email": user.email, "password": NEW})
    assert login.status_code == 302


def test_link_expires_after_an_hour(app, client, ctx, settings):
    settings(SELF_SERVICE_RESET=True)
    make_user(email="slowpoke@example.com")
    client.post("/password/forgot", data={"email": "slowpoke@example.com"})
    path = _reset_link("slowpoke@example.com")
    reset = db.session.scalar(db.select(PasswordReset))
    reset.expires_at -= timedelta(minutes=61)
    db.session.commit()
    response = app.test_client().get(path)
    assert response.status_code == 410 and "expired" in response.text
