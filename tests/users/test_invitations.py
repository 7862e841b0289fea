import re
from datetime import timedelta

from portal.audits.models import AuditEvent
from portal.extensions import db
from portal.mail import OutboxMessage
from portal.timeutil import utcnow
from portal.users.models import Invitation, User
from tests.factories import make_user

GOOD_PASSWORD = "blue-kettle-sings-42"


def _invite(client, email="new.person@example.com", role="agent"):
    return client.post("/users/invitations", data={"email": email, "role": role})


def _link_from_outbox(to):
    message = db.session.scalars(
        db.select(OutboxMessage).where(OutboxMessage.to == to).order_by(OutboxMessage.id.desc())
    ).first()
    assert message is not None, "no email in the outbox"
    match = re.search(r"http://portal\.test(/invite/\S+)", message.body)
    assert match, message.body
    return message, match.group(1)


def test_admin_invites_and_invitee_sets_password_and_is_signed_in(app, client, as_role):
    admin = as_role("admin")
    response = _invite(client, "New.Person@Example.com")
    assert response.status_code == 302
    page = client.get("/users/invitations")
    assert "new.person@example.com" in page.text

    message, path = _link_from_outbox("new.person@example.com")
    # No MAIL_SERVER on the embedded default: the job kept it, readable in the Outbox.
    assert message.status == "held"
    assert client.get(f"/outbox/{message.id}").status_code == 200

    invitee = app.test_client()
    form = invitee.get(path)
    assert form.status_code == 200 and "agent" in form.text
    done = invitee.post(
        path, data={"name": "Nia New", "password": GOOD_PASSWORD, "confirm": GOOD_PASSWORD}
    )
    assert done.status_code == 302
    assert "Hello, Nia New" in invitee.get("/").text

    user = db.session.scalar(db.select(User).where(User.email == "new.person@example.com"))
    assert user.role == "agent" and user.is_active
    actions = [e.action for e in db.session.scalars(db.select(AuditEvent).order_by(AuditEvent.id))]
    assert "invitation.sent" in actions and "invitation.accepted" in actions
    sent = db.session.scalar(db.select(AuditEvent).where(AuditEvent.action == "invitation.sent"))
    assert sent.actor_id == admin.id

    # Single use: the same link now gives a clear page, not a form and not a 500.
    again = app.test_client().get(path)
    assert again.status_code == 410
    assert "already used" in again.text


def test_inviting_an_existing_account_is_a_clear_error(client, as_role):
    as_role("admin")
    make_user(email="taken@example.com")
    response = _invite(client, "TAKEN@example.com")
    assert response.status_code == 422
    assert "already has an account" in response.text
    assert db.session.scalar(db.select(db.func.count()).select_from(Invitation)) == 0


def test_password_policy_is_enforced_on_acceptance(app, client, as_role):
    as_role("admin")
    _invite(client, "pat@example.com")
    _, path = _link_from_outbox("pat@example.com")
    invitee = app.test_client()
    cases = {
        "short-pass": "at least 12 characters",
        "password1234": "too common",
        "xx-pat@example.com-xx": "must not contain your email",
    }
    for password, message in cases.items():
        response = invitee.post(
            path, data={"name": "Pat", "password": password, "confirm": password}
        )
        assert response.status_code == 422, password
        assert message in response.text, password
    mismatch = invitee.post(
        path, data={"name": "Pat", "password": GOOD_PASSWORD, "confirm": GOOD_PASSWORD + "x"}
    )
    assert mismatch.status_code == 422 and "differ" in mismatch.text
    assert db.session.scalar(db.select(User).where(User.email == "pat@example.com")) is None


def test_expired_revoked_and_forged_links(app, client, as_role):
    as_role("admin")
    _invite(client, "late@example.com")
    invitation = db.session.scalar(db.select(Invitation))
    _, path = _link_from_outbox("late@example.com")

    invitation.expires_at = utcnow() - timedelta(minutes=1)
    db.session.commit()
    expired = app.test_client().get(path)
    assert expired.status_code == 410 and "expired" in expired.text

    forged = app.test_client().get(path[:-3] + "abc")
    assert forged.status_code == 410 and "not valid" in forged.text


def test_resend_replaces_the_link_and_revoke_withdraws_it(app, client, as_role):
    as_role("admin")
    _invite(client, "sam@example.com")
    invitation = db.session.scalar(db.select(Invitation))
    _, first = _link_from_outbox("sam@example.com")

    assert client.post(f"/users/invitations/{invitation.id}/resend").status_code == 302
    _, second = _link_from_outbox("sam@example.com")
    assert first != second
    assert app.test_client().get(first).status_code == 410
    assert app.test_client().get(second).status_code == 200

    assert client.post(f"/users/invitations/{invitation.id}/revoke").status_code == 302
    revoked = app.test_client().get(second)
    assert revoked.status_code == 410 and "withdrawn" in revoked.text
    actions = {e.action for e in db.session.scalars(db.select(AuditEvent))}
    assert {"invitation.resent", "invitation.revoked"} <= actions
    # Revoking twice is a conflict with a message, not a 500.
    assert client.post(f"/users/invitations/{invitation.id}/revoke").status_code == 409


def test_a_second_pending_invitation_for_one_email_is_refused(client, as_role):
    as_role("admin")
    assert _invite(client, "dup@example.com").status_code == 302
    response = _invite(client, "dup@example.com")
    assert response.status_code == 422 and "pending invitation" in response.text
