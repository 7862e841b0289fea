"""Signing in and out: credentials, lockout, and sessions kept as rows (DESIGN §3)."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from flask import current_app
from sqlalchemy import func, select, update

from .. import jobs, logs
from ..audits import alerts, record
from ..extensions import db
from ..timeutil import utcnow
from .models import User, UserSession
from .passwords import hash_password, needs_rehash, verify_password

# Throttle for last_seen_at writes: one UPDATE per session per minute at most.
TOUCH_EVERY = timedelta(minutes=1)
LOGIN_FAILED_MESSAGE = "That email and password do not match an active account."
COMPROMISED_MESSAGE = (
    "This account is on hold because it may have been compromised. Its password must be "
    "reset before it can sign in: ask an administrator, or use “Forgot password?” if offered."
)


def normalize_email(email: str) -> str:
    return email.strip().lower()


def find_user_by_email(email: str) -> User | None:
    return db.session.scalar(select(User).where(User.email == normalize_email(email)))


@dataclass
class SignIn:
    user: User | None
    error: str | None = None
    token: str | None = None


def _settings():
    return current_app.config["SETTINGS"]


def _register_failure(user: User) -> bool:
    """Count a failed sign-in; lock the account at the threshold. True when it just locked."""
    s = _settings()
    now = utcnow()
    window_start = now - timedelta(minutes=s.LOCKOUT_WINDOW_MINUTES)
    if user.first_failed_login_at is None or user.first_failed_login_at < window_start:
        user.failed_logins, user.first_failed_login_at = 0, now
    user.failed_logins += 1
    if user.failed_logins >= s.LOCKOUT_THRESHOLD:
        user.locked_until = now + timedelta(minutes=s.LOCKOUT_MINUTES)
        user.failed_logins, user.first_failed_login_at = 0, None
        return True
    return False


def authenticate(email: str, password: str, ip: str | None, user_agent: str | None) -> SignIn:
    """Check credentials and, when they are good, open a session. Commits either way."""
    user = find_user_by_email(email)
    password_ok = verify_password(user.password_hash if user else None, password)
    reason = None
    if user is None:
        reason = "unknown account"
    elif not user.is_active:
        reason = "deactivated"
    elif user.compromised_at is not None:
        reason = "compromised"  # its password was cleared: the old one matches nothing
    elif user.is_locked:
        reason = "locked"
    elif not password_ok:
        reason = "wrong password"
    if reason:
        attempted = normalize_email(email)[:254]
        failed = record(
            "auth.login_failed",
            None,
            user or ("email", attempted[:64]),
            email=attempted,
            reason=reason,
        )
        logs.auth_failed(attempted, reason, failed.ip)  # the AUTH_FAILED line
        alerts.after_failed_sign_in(failed)
        if user is not None and reason == "wrong password" and _register_failure(user):
            record(
                "auth.locked",
                None,
                user,
                until=user.locked_until,
                failures=_settings().LOCKOUT_THRESHOLD,
            )
        jobs.commit()
        if reason == "compromised":
            return SignIn(None, COMPROMISED_MESSAGE)
        return SignIn(
            None,
            LOGIN_FAILED_MESSAGE
            if reason != "locked"
            else "This account is locked after too many failed sign-ins. "
            "Try again later or ask an administrator to unlock it.",
        )
    assert user is not None
    user.failed_logins, user.first_failed_login_at = 0, None
    user.last_login_at = utcnow()
    if needs_rehash(user.password_hash or ""):
        user.password_hash = hash_password(password)
    token = _open_session(user, ip, user_agent)
    record("auth.login", user, user)
    jobs.commit()
    return SignIn(user, token=token)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _open_session(user: User, ip: str | None, user_agent: str | None) -> str:
    token = secrets.token_urlsafe(32)
    db.session.add(
        UserSession(
            token_hash=_token_hash(token),
            user_id=user.id,
            password_version=user.password_version,
            ip=ip,
            user_agent=(user_agent or "")[:255] or None,
        )
    )
    return token


def open_session_for(user: User, ip: str | None, user_agent: str | None) -> str:
    """A session for a user who just proved who they are another way (invite, reset)."""
    user.last_login_at = utcnow()
    token = _open_session(user, ip, user_agent)
    record("auth.login", user, user, via="link")
    return token


def session_from_token(token: str | None) -> UserSession | None:
    """The open session the cookie names, or None if it ended for any reason."""
    if not token or len(token) > 100:
        return None
    row = db.session.scalar(select(UserSession).where(UserSession.token_hash == _token_hash(token)))
    if row is None or row.revoked_at is not None:
        return None
    s, now = _settings(), utcnow()
    user = row.user
    expired = now - row.last_seen_at > timedelta(
        hours=s.SESSION_IDLE_HOURS
    ) or now - row.created_at > timedelta(days=s.SESSION_MAX_DAYS)
    if not user.is_active or row.password_version != user.password_version or expired:
        return None
    if now - row.last_seen_at > TOUCH_EVERY:
        # End the read first: on SQLite a write that opens its own transaction waits for
        # the lock, where one that upgrades a stale read would fail. Concurrent touches of
        # one session are harmless (the condition makes the second a no-op).
        db.session.commit()
        db.session.execute(
            update(UserSession)
            .where(UserSession.id == row.id, UserSession.last_seen_at < now - TOUCH_EVERY)
            .values(last_seen_at=now)
        )
        db.session.commit()
    return row


def end_session(row: UserSession, actor: User, reason: str = "signed out") -> None:
    if row.revoked_at is None:
        row.revoked_at, row.revoked_reason = utcnow(), reason[:40]
        record("session.ended", actor, row.user, session_id=row.id, reason=reason)
    jobs.commit()


def _end_where(actor: User, reason: str, *criteria) -> int:
    now = utcnow()
    ended = db.session.execute(
        update(UserSession)
        .where(UserSession.revoked_at.is_(None), *criteria)
        .values(revoked_at=now, revoked_reason=reason[:40])
    ).rowcount
    return ended


def end_user_sessions(
    user: User, actor: User, reason: str, keep_session_id: int | None = None, commit: bool = True
) -> int:
    """End every open session of `user` (except `keep_session_id`)."""
    criteria = [UserSession.user_id == user.id]
    if keep_session_id is not None:
        criteria.append(UserSession.id != keep_session_id)
    ended = _end_where(actor, reason, *criteria)
    record(
        "session.ended_all",
        actor,
        user,
        count=ended,
        reason=reason,
        kept_session_id=keep_session_id,
    )
    if commit:
        jobs.commit()
    return ended


def end_everyone_else(actor: User, keep_session_id: int) -> int:
    ended = _end_where(actor, "ended by admin", UserSession.id != keep_session_id)
    record("session.ended_everyone", actor, None, count=ended, kept_session_id=keep_session_id)
    jobs.commit()
    return ended


def open_sessions(user: User) -> list[UserSession]:
    return list(
        db.session.scalars(
            select(UserSession)
            .where(UserSession.user_id == user.id, UserSession.revoked_at.is_(None))
            .order_by(UserSession.last_seen_at.desc())
        )
    )


def open_session_counts(user_ids: list[int]) -> dict[int, int]:
    rows = db.session.execute(
        select(UserSession.user_id, func.count())
        .where(UserSession.user_id.in_(user_ids), UserSession.revoked_at.is_(None))
        .group_by(UserSession.user_id)
    )
    return {user_id: count for user_id, count in rows}
