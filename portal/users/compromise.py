"""Containing a compromised account: end its sessions, void its password, hold sign-in
until a new password is set, and gather what it did recently for the investigation.

The hold is `User.compromised_at`: auth.authenticate refuses it with its own message,
and setting any new password (an admin's temporary one, or a completed reset link)
clears it (services._set_password).
"""

from __future__ import annotations

from sqlalchemy import and_, or_, select

from .. import jobs
from ..audits import record
from ..audits.models import AuditEvent
from ..errors import Conflict, ServiceError
from ..extensions import db
from ..timeutil import utcnow
from . import auth, links
from .models import PasswordReset, User

REASON_MAX = 200
EVENTS_SHOWN = 100
SIGN_IN_ACTIONS = ("auth.login", "auth.login_failed")


def mark_compromised(actor: User, user: User, reason: str) -> int:
    """Contain `user`'s account; returns how many sessions ended.

    The password hash is cleared (not merely versioned), so the stolen password no
    longer matches anything; the version moves on, so any session row that escaped the
    revocation is refused too. Reset links already sent are voided (new nonces): one
    may sit in a mailbox the intruder reads. A new reset can be asked for afterwards.
    """
    if user.id == actor.id:
        raise Conflict("You cannot mark your own account compromised; ask another admin.")
    if user.compromised_at is not None:
        raise Conflict(
            "This account is already marked compromised; it stays so until its password is reset."
        )
    reason = (reason or "").strip()
    if not reason:
        raise ServiceError("Say why the account is thought compromised.", field="reason")
    if len(reason) > REASON_MAX:
        raise ServiceError(f"Use at most {REASON_MAX} characters.", field="reason")
    user.compromised_at = utcnow()
    user.password_hash = None
    user.password_version += 1
    voided = 0
    for reset in db.session.scalars(
        select(PasswordReset).where(
            PasswordReset.user_id == user.id, PasswordReset.used_at.is_(None)
        )
    ):
        reset.nonce = links.new_nonce()
        voided += 1
    ended = auth.end_user_sessions(user, actor, "compromised", commit=False)
    record(
        "user.compromised",
        actor,
        user,
        reason=reason,
        sessions_ended=ended,
        reset_links_voided=voided,
        before={"compromised": False},
        after={"compromised": True, "password": "cleared"},
    )
    jobs.commit()
    return ended


def recent_events(user: User, limit: int = EVENTS_SHOWN) -> list[AuditEvent]:
    """The newest events by or about `user`: two index walks (actor, target) of at most
    `limit` rows each, merged."""
    as_actor = select(AuditEvent).where(AuditEvent.actor_id == user.id)
    as_target = select(AuditEvent).where(
        AuditEvent.target_type == "user", AuditEvent.target_id == str(user.id)
    )
    found: dict[int, AuditEvent] = {}
    for stmt in (as_actor, as_target):
        for event in db.session.scalars(stmt.order_by(AuditEvent.id.desc()).limit(limit)):
            found[event.id] = event
    return sorted(found.values(), key=lambda e: e.id, reverse=True)[:limit]


def sign_in_attempts(user: User, limit: int = EVENTS_SHOWN) -> list[AuditEvent]:
    """Sign-ins and failed sign-ins of the account, and failures under its email made
    while no account had it (auth.authenticate names those by the email typed)."""
    stmt = (
        select(AuditEvent)
        .where(
            AuditEvent.action.in_(SIGN_IN_ACTIONS),
            or_(
                and_(AuditEvent.target_type == "user", AuditEvent.target_id == str(user.id)),
                and_(AuditEvent.target_type == "email", AuditEvent.target_id == user.email[:64]),
            ),
        )
        .order_by(AuditEvent.id.desc())
        .limit(limit)
    )
    return list(db.session.scalars(stmt))
