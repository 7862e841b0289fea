from portal.audits.models import AuditEvent
from portal.extensions import db
from tests.factories import PASSWORD, make_user


def _events(action):
    return db.session.scalars(db.select(AuditEvent).where(AuditEvent.action == action)).all()


def test_sign_in_with_mixed_case_email_opens_home(client, ctx):
    user = make_user(role="agent", email="Ana@Example.com", name="Ana")
    response = client.post("/login", data={"email": "  ANA@example.COM ", "password": PASSWORD})
    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    home = client.get("/")
    assert home.status_code == 200
    assert "Hello, Ana" in home.text
    assert [e.target_id for e in _events("auth.login")] == [str(user.id)]


def test_same_message_for_unknown_account_and_wrong_password(client, ctx):
    make_user(email="known@example.com")
    unknown = client.post("/login", data={"email": "nobody@example.com", "password": PASSWORD})
    wrong = client.post("/login", data={"email": "known@example.com", "password": "nope-nope-nope"})
    assert unknown.status_code == wrong.status_code == 422
    message = "That email and password do not match an active account."
    assert message in unknown.text and message in wrong.text
    reasons = sorted(e.data["reason"] for e in _events("auth.login_failed"))
    assert reasons == ["unknown account", "wrong password"]


def test_signed_out_visitor_is_sent_to_login(client):
    response = client.get("/users/")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")


def test_logout_ends_the_session_row(client, as_role):
    as_role("agent")
    assert client.get("/").status_code == 200
    response = client.post("/logout")
    assert response.status_code == 302
    assert client.get("/").status_code == 302
    assert len(_events("session.ended")) == 1


def test_open_redirect_after_login_is_refused(client, ctx):
    make_user(email="r@example.com")
    response = client.post(
        "/login?next=//evil.example/x", data={"email": "r@example.com", "password": PASSWORD}
    )
    assert response.headers["Location"] == "/"


def test_htmx_sign_in_navigates_with_hx_redirect_and_errors_swap_in_place(client, ctx):
    make_user(email="hx@example.com")
    htmx = {"HX-Request": "true"}
    bad = client.post("/login", data={"email": "hx@example.com", "password": "nope"}, headers=htmx)
    assert bad.status_code == 422
    assert "<html" not in bad.text and 'id="login-form"' in bad.text
    assert 'value="hx@example.com"' in bad.text
    good = client.post(
        "/login?next=/users/", data={"email": "hx@example.com", "password": PASSWORD}, headers=htmx
    )
    assert good.status_code == 200 and good.headers["HX-Redirect"] == "/users/"


def test_control_characters_in_the_user_agent_are_not_stored(client, ctx):
    from portal.users.models import UserSession

    make_user(email="ua@example.com")
    response = client.post(
        "/login",
        data={"email": "ua@example.com", "password": PASSWORD},
        headers={"User-Agent": "Evil\x00Bot\x07/1.0"},
    )
    assert response.status_code == 302
    row = db.session.scalars(db.select(UserSession)).first()
    assert row.user_agent == "EvilBot/1.0"
    assert _events("auth.login")[0].user_agent == "EvilBot/1.0"
