"""Account administration: invitations, roles, (de)activation, unlock, password resets.

Each function is one use case: it checks the rule, changes the rows, records
the audit event and commits (enqueuing its emails after the commit).
"""

from __future__ import annotations

from datetime import timedelta

from flask import current_app, render_template
from sqlalchemy import select

from .. import jobs, mail
from ..audits import alerts, fingerprint, record
from ..errors import Conflict, LinkInvalid, ServiceError
from ..extensions import db
from ..security import Role
from ..timeutil import utcnow
from ..web import external_url
from . import auth, links
from .models import Invitation, PasswordReset, User
from .passwords import hash_password, policy_error, temporary_password


def _settings():
    return current_app.config["SETTINGS"]


def _link(endpoint: str, **values: str) -> str:
    return external_url(endpoint, **values)


def _check_password(password: str, email: str) -> None:
    problem = policy_error(password, email)
    if problem:
        raise ServiceError(problem, field="password")


def _check_role(role: str) -> Role:
    try:
        return Role(role)
    except ValueError:
        raise ServiceError("Choose one of the listed roles.", field="role") from None


def create_user(email: str, name: str, role: str, password: str, actor: User | None) -> User:
    """Create an active account directly (CLI and seeding; the UI invites instead)."""
    email = auth.normalize_email(email)
    _check_role(role)
    if auth.find_user_by_email(email):
        raise Conflict(f"An account for {email} already exists.", field="email")
    _check_password(password, email)
    user = User(
        email=email, name=name.strip() or email, role=role, password_hash=hash_password(password)
    )
    db.session.add(user)
    db.session.flush()
    record("user.created", actor, user, after={"email": email, "role": role})
    jobs.commit()
    return user


# -- invitations ---------------------------------------------------------------------------


def _send_invitation(invitation: Invitation) -> None:
    token = links.make_token("invite", invitation.id, invitation.nonce)
    body = render_template(
        "users/email/invitation.txt",
        invitation=invitation,
        link=_link("users.accept_invitation", token=token),
        hours=_settings().INVITATION_HOURS,
    )
    mail.send(invitation.email, "You are invited to the Ops Portal", body)


def invite(email: str, role: str, actor: User) -> Invitation:
    email = auth.normalize_email(email)
    _check_role(role)
    if auth.find_user_by_email(email):
        raise Conflict(f"{email} already has an account.", field="email")
    pending = db.session.scalar(
        select(Invitation).where(
            Invitation.email == email,
            Invitation.accepted_at.is_(None),
            Invitation.revoked_at.is_(None),
            Invitation.expires_at > utcnow(),
        )
    )
    if pending:
        raise Conflict(
            f"{email} already has a pending invitation; resend it instead.", field="email"
        )
    invitation = Invitation(
        email=email,
        role=role,
        nonce=links.new_nonce(),
        invited_by_id=actor.id,
        expires_at=utcnow() + timedelta(hours=_settings().INVITATION_HOURS),
    )
    db.session.add(invitation)
    db.session.flush()
    _send_invitation(invitation)
    record("invitation.sent", actor, invitation, email=email, role=role)
    alerts.role_granted(email, role, actor, invitation)  # a new admin alerts
    jobs.commit()
    return invitation


def resend_invitation(invitation: Invitation, actor: User) -> None:
    if invitation.accepted_at:
        raise Conflict("This invitation was already accepted.")
    invitation.nonce = links.new_nonce()
    invitation.revoked_at = None
    invitation.expires_at = utcnow() + timedelta(hours=_settings().INVITATION_HOURS)
    _send_invitation(invitation)
    record("invitation.resent", actor, invitation, email=invitation.email)
    jobs.commit()


def revoke_invitation(invitation: Invitation, actor: User) -> None:
    if invitation.state != "pending":
        raise Conflict(f"This invitation is already {invitation.state}.")
    invitation.revoked_at = utcnow()
    record("invitation.revoked", actor, invitation, email=invitation.email)
    jobs.commit()


def invitation_from_token(token: str) -> Invitation:
    max_age = _settings().INVITATION_HOURS * 3600
    row_id, nonce = links.read_token("invite", token, max_age)
    invitation = db.session.get(Invitation, row_id)
    if invitation is None or not links.nonce_matches(invitation.nonce, nonce):
        raise LinkInvalid("This invitation link was replaced by a newer one or is not valid.")
    if invitation.state == "accepted":
        raise LinkInvalid("This invitation was already used. Sign in instead.")
    if invitation.state == "revoked":
        raise LinkInvalid("This invitation was withdrawn. Ask an administrator for a new one.")
    if invitation.state == "expired":
        raise LinkInvalid("This invitation has expired. Ask an administrator to resend it.")
    return invitation


def accept_invitation(
    invitation: Invitation, name: str, password: str, ip: str | None, user_agent: str | None
) -> tuple[User, str]:
    """Create the invitee's account and sign them in; returns the user and session token."""
    if auth.find_user_by_email(invitation.email):
        raise LinkInvalid(f"{invitation.email} already has an account. Sign in instead.")
    _check_password(password, invitation.email)
    user = User(
        email=invitation.email,
        name=name.strip(),
        role=invitation.role,
        password_hash=hash_password(password),
    )
    db.session.add(user)
    db.session.flush()
    invitation.accepted_at, invitation.user_id = utcnow(), user.id
    record("invitation.accepted", user, invitation, email=user.email, role=user.role)
    token = auth.open_session_for(user, ip, user_agent)
    jobs.commit()
    return user, token


def pending_invitations() -> list[Invitation]:
    return list(
        db.session.scalars(
            select(Invitation)
            .where(Invitation.accepted_at.is_(None), Invitation.revoked_at.is_(None))
            .order_by(Invitation.created_at.desc())
        )
    )


# -- roles and status ----------------------------------------------------------------------


def _other_active_admins(user: User) -> int:
    return (
        db.session.scalar(
            select(db.func.count())
            .select_from(User)
            .where(User.role == Role.ADMIN, User.is_active.is_(True), User.id != user.id)
        )
        or 0
    )


def change_role(user: User, role: str, actor: User) -> None:
    new = _check_role(role)
    if user.role == new:
        return
    if user.role == Role.ADMIN and not _other_active_admins(user):
        raise Conflict("This is the last active admin; make someone else an admin first.")
    before = user.role
    user.role = new
    record("user.role_changed", actor, user, before={"role": before}, after={"role": new.value})
    alerts.role_granted(user.email, new.value, actor, user)  # a new admin alerts
    jobs.commit()


def deactivate(user: User, actor: User) -> None:
    if user.id == actor.id:
        raise Conflict("You cannot deactivate your own account.")
    if not user.is_active:
        raise Conflict("This account is already deactivated.")
    if user.role == Role.ADMIN and not _other_active_admins(user):
        raise Conflict("This is the last active admin.")
    user.is_active = False
    record(
        "user.deactivated",
        actor,
        user,
        before={"status": "active"},
        after={"status": "deactivated"},
    )
    auth.end_user_sessions(user, actor, "deactivated", commit=False)
    jobs.commit()


def reactivate(user: User, actor: User) -> None:
    if user.is_active:
        raise Conflict("This account is already active.")
    user.is_active = True
    record(
        "user.reactivated",
        actor,
        user,
        before={"status": "deactivated"},
        after={"status": "active"},
    )
    jobs.commit()


def unlock(user: User, actor: User | None) -> None:
    if not user.is_locked:
        raise Conflict("This account is not locked.")
    before = user.locked_until
    user.locked_until, user.failed_logins, user.first_failed_login_at = None, 0, None
    record(
        "user.unlocked", actor, user, before={"locked_until": before}, after={"locked_until": None}
    )
    jobs.commit()


# -- passwords -----------------------------------------------------------------------------


def _set_password(user: User, password: str) -> None:
    user.password_hash = hash_password(password)
    user.password_version += 1
    # A new password is what a compromised account's hold waits for (users/compromise.py).
    user.compromised_at = None


def admin_reset_password(user: User, actor: User) -> str:
    """Set a temporary password (returned once) that must be changed at the next sign-in."""
    if user.id == actor.id:
        raise Conflict("Use “Change password” for your own account.")
    temporary = temporary_password()
    _set_password(user, temporary)
    user.must_change_password = True
    user.locked_until = None
    record(
        "user.password_reset_by_admin",
        actor,
        user,
        after={"password": fingerprint(temporary), "must_change_password": True},
    )
    auth.end_user_sessions(user, actor, "password reset", commit=False)
    jobs.commit()
    return temporary


def change_password(user: User, current: str, new: str, session_id: int | None) -> None:
    """The signed-in user's own change; their other sessions end."""
    from .passwords import verify_password

    if not verify_password(user.password_hash, current):
        raise ServiceError("Your current password is not correct.", field="current_password")
    if current == new:
        raise ServiceError("Choose a password different from the current one.", field="password")
    _check_password(new, user.email)
    _set_password(user, new)
    user.must_change_password = False
    record("user.password_changed", user, user, after={"password": fingerprint(new)})
    # The current session carries over to the new password version.
    if session_id is not None:
        from .models import UserSession

        current_session = db.session.get(UserSession, session_id)
        if current_session is not None:
            current_session.password_version = user.password_version
    auth.end_user_sessions(user, user, "password changed", keep_session_id=session_id, commit=False)
    jobs.commit()


def request_password_reset(email: str) -> None:
    """Email a reset link if the account exists; the caller answers the same either way."""
    user = auth.find_user_by_email(email)
    if user is None or not user.is_active:
        record(
            "auth.reset_requested",
            None,
            ("email", auth.normalize_email(email)[:64]),
            outcome="no such active account",
        )
        jobs.commit()
        return
    reset = PasswordReset(
        user_id=user.id,
        nonce=links.new_nonce(),
        expires_at=utcnow() + timedelta(minutes=_settings().RESET_LINK_MINUTES),
    )
    db.session.add(reset)
    db.session.flush()
    token = links.make_token("reset", reset.id, reset.nonce)
    body = render_template(
        "users/email/reset.txt",
        user=user,
        link=_link("users.reset_password", token=token),
        minutes=_settings().RESET_LINK_MINUTES,
    )
    mail.send(user.email, "Reset your Ops Portal password", body)
    record("auth.reset_requested", None, user, outcome="link sent")
    jobs.commit()


def reset_from_token(token: str) -> PasswordReset:
    row_id, nonce = links.read_token("reset", token, _settings().RESET_LINK_MINUTES * 60)
    reset = db.session.get(PasswordReset, row_id)
    if reset is None or not links.nonce_matches(reset.nonce, nonce):
        raise LinkInvalid("This reset link is not valid.")
    if reset.used_at is not None:
        raise LinkInvalid("This reset link was already used. Ask for a new one.")
    if reset.expires_at <= utcnow() or not reset.user.is_active:
        raise LinkInvalid("This reset link has expired. Ask for a new one.")
    return reset


def complete_password_reset(
    reset: PasswordReset, password: str, ip: str | None, user_agent: str | None
) -> str:
    """Set the new password, end every other session, and sign in; returns the token."""
    user = reset.user
    _check_password(password, user.email)
    _set_password(user, password)
    user.must_change_password = False
    user.locked_until, user.failed_logins = None, 0
    reset.used_at = utcnow()
    record("auth.reset_completed", user, user, after={"password": fingerprint(password)})
    auth.end_user_sessions(user, user, "password reset", commit=False)
    token = auth.open_session_for(user, ip, user_agent)
    jobs.commit()
    return token
