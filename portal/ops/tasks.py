"""Housekeeping jobs run by the scheduler; each is safe to run twice."""

from __future__ import annotations

from datetime import timedelta

from flask import current_app
from sqlalchemy import delete, or_, update

from .. import jobs
from ..extensions import db
from ..timeutil import utcnow
from ..users.models import PasswordReset, UserSession

SPENT_LINK_DAYS = 30


@jobs.job
def expire_sessions() -> int:
    """Close sessions past their idle or absolute lifetime, so lists show only live ones."""
    s, now = current_app.config["SETTINGS"], utcnow()
    closed = db.session.execute(
        update(UserSession)
        .where(
            UserSession.revoked_at.is_(None),
            or_(
                UserSession.last_seen_at < now - timedelta(hours=s.SESSION_IDLE_HOURS),
                UserSession.created_at < now - timedelta(days=s.SESSION_MAX_DAYS),
            ),
        )
        .values(revoked_at=now, revoked_reason="expired")
    ).rowcount
    db.session.commit()
    return closed


@jobs.job
def purge_spent_links() -> int:
    """Remove password-reset rows long used or expired (the audit trail keeps the facts)."""
    cutoff = utcnow() - timedelta(days=SPENT_LINK_DAYS)
    removed = db.session.execute(
        delete(PasswordReset).where(PasswordReset.expires_at < cutoff)
    ).rowcount
    db.session.commit()
    return removed
