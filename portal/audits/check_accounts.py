"""Checks of accounts as they stand at the end of the run's period: dormant accounts,
stale invitations, the admin review, long-lived sessions and the permission audit (who
holds what). Each is a count and a filtered, limited select; only failing rows reach
Python, and at most MAX_FINDINGS_PER_CHECK of them."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import current_app
from sqlalchemy import ColumnElement, func, or_, select

from ..extensions import db
from ..security import ROLE_PERMISSIONS, Role
from ..users.models import Invitation, User, UserSession
from .check_access import active_users, count_of
from .check_types import MAX_FINDINGS_PER_CHECK, Context, Draft, Outcome, iso

DORMANT_DAYS = 90
STALE_INVITATION_DAYS = 7
# An admin who has not signed in for this long does not need the role.
ADMIN_IDLE_DAYS = 30
# The permission audit names who holds the roles that change or read everything; the
# others it counts.
NAMED_ROLES = (Role.ADMIN, Role.AUDITOR, Role.APPROVER)
NAMED_HOLDERS = 50


def _user_row(user: Any) -> dict[str, Any]:
    return {
        "user_id": user.id,
        "email": user.email,
        "role": user.role,
        "last_sign_in": iso(user.last_login_at),
        "created": iso(user.created_at),
    }


def _users_failing(condition: ColumnElement[bool]) -> tuple[list[Any], int]:
    """The first failing active accounts (by id) and how many fail in all."""
    where = [User.is_active.is_(True), condition]
    total = count_of(select(func.count()).select_from(User).where(*where))
    users = db.session.execute(
        select(
            User.id, User.email, User.role, User.last_login_at, User.created_at, User.compromised_at
        )
        .where(*where)
        .order_by(User.id)
        .limit(MAX_FINDINGS_PER_CHECK)
    ).all()
    return list(users), total


def _idle_since(cutoff: Any) -> ColumnElement[bool]:
    """No sign-in since `cutoff`, by an account that existed before it."""
    return (User.created_at < cutoff) & or_(
        User.last_login_at.is_(None), User.last_login_at < cutoff
    )


def dormant_accounts(ctx: Context) -> Outcome:
    users, failing = _users_failing(_idle_since(ctx.as_of - timedelta(days=DORMANT_DAYS)))
    drafts = [
        Draft(
            f"user:{u.id}",
            f"{u.email} has not signed in for {DORMANT_DAYS} days"
            if u.last_login_at
            else f"{u.email} has never signed in",
            [_user_row(u)],
        )
        for u in users
    ]
    return Outcome(active_users(), drafts, failing)


def stale_invitations(ctx: Context) -> Outcome:
    unanswered = [Invitation.accepted_at.is_(None), Invitation.revoked_at.is_(None)]
    stale = [*unanswered, Invitation.created_at < ctx.as_of - timedelta(days=STALE_INVITATION_DAYS)]
    total = count_of(select(func.count()).select_from(Invitation).where(*unanswered))
    failing = count_of(select(func.count()).select_from(Invitation).where(*stale))
    rows = db.session.execute(
        select(
            Invitation.id,
            Invitation.email,
            Invitation.role,
            Invitation.created_at,
            Invitation.expires_at,
        )
        .where(*stale)
        .order_by(Invitation.id)
        .limit(MAX_FINDINGS_PER_CHECK)
    ).all()
    drafts = [
        Draft(
            f"invitation:{r.id}",
            f"Invitation of {r.email} ({r.role}) unanswered since {r.created_at:%Y-%m-%d}",
            [
                {
                    "invitation_id": r.id,
                    "email": r.email,
                    "role": r.role,
                    "sent": iso(r.created_at),
                    "expires": iso(r.expires_at),
                }
            ],
        )
        for r in rows
    ]
    return Outcome(total, drafts, failing)


def admin_review(ctx: Context) -> Outcome:
    idle = _idle_since(ctx.as_of - timedelta(days=ADMIN_IDLE_DAYS))
    users, failing = _users_failing(
        (User.role == Role.ADMIN) & (idle | User.compromised_at.is_not(None))
    )
    drafts = []
    for u in users:
        if u.compromised_at is not None:
            title, severity = f"Admin {u.email} is marked compromised", "high"
        else:
            title, severity = f"Admin {u.email} has not signed in for {ADMIN_IDLE_DAYS} days", None
        drafts.append(Draft(f"user:{u.id}", title, [_user_row(u)], severity=severity))
    return Outcome(active_users(User.role == Role.ADMIN), drafts, failing)


def long_sessions(ctx: Context) -> Outcome:
    max_days = current_app.config["SETTINGS"].SESSION_MAX_DAYS
    open_ = [UserSession.revoked_at.is_(None), UserSession.created_at < ctx.as_of]
    old = [*open_, UserSession.created_at < ctx.as_of - timedelta(days=max_days)]
    total = count_of(select(func.count()).select_from(UserSession).where(*open_))
    failing = count_of(select(func.count()).select_from(UserSession).where(*old))
    rows = db.session.execute(
        select(
            UserSession.id,
            UserSession.user_id,
            UserSession.ip,
            UserSession.created_at,
            UserSession.last_seen_at,
            User.email,
        )
        .join(User, User.id == UserSession.user_id)
        .where(*old)
        .order_by(UserSession.id)
        .limit(MAX_FINDINGS_PER_CHECK)
    ).all()
    drafts = [
        Draft(
            f"session:{r.id}",
            f"A session of {r.email} open since {r.created_at:%Y-%m-%d} (over {max_days} days)",
            [
                {
                    "user_id": r.user_id,
                    "email": r.email,
                    "ip": r.ip,
                    "opened": iso(r.created_at),
                    "last_seen": iso(r.last_seen_at),
                }
            ],
        )
        for r in rows
    ]
    return Outcome(total, drafts, failing)


def _holders(role: Role) -> list[str]:
    """The first NAMED_HOLDERS active accounts holding `role`, by email."""
    return list(
        db.session.scalars(
            select(User.email)
            .where(User.is_active.is_(True), User.role == role.value)
            .order_by(User.email)
            .limit(NAMED_HOLDERS)
        )
    )


def permission_audit(ctx: Context) -> Outcome:
    """Who holds what: every role with its active accounts and permissions (the result's
    details); findings for what the role table cannot explain — an account whose role is
    no known role, and a deactivated account that still has an open session."""
    held = dict(
        db.session.execute(
            select(User.role, func.count()).where(User.is_active.is_(True)).group_by(User.role)
        ).all()
    )
    known = [role.value for role in Role]
    details = {
        "roles": [
            {
                "role": role.value,
                "accounts": int(held.get(role.value, 0)),
                "permissions": sorted(p.value for p in ROLE_PERMISSIONS[role]),
                "holders": _holders(role) if role in NAMED_ROLES else [],
            }
            for role in Role
        ]
    }
    unknown_role = User.is_active.is_(True) & User.role.not_in(known)
    open_session = (
        select(UserSession.id)
        .where(UserSession.user_id == User.id, UserSession.revoked_at.is_(None))
        .exists()
    )
    left_open = User.is_active.is_(False) & open_session
    failing = count_of(select(func.count()).select_from(User).where(unknown_role | left_open))
    users = db.session.execute(
        select(User.id, User.email, User.role, User.is_active, User.last_login_at, User.created_at)
        .where(unknown_role | left_open)
        .order_by(User.id)
        .limit(MAX_FINDINGS_PER_CHECK)
    ).all()
    drafts = []
    for u in users:
        if u.is_active:
            drafts.append(
                Draft(f"user:{u.id}", f"{u.email} holds an unknown role “{u.role}”", [_user_row(u)])
            )
        else:
            drafts.append(
                Draft(
                    f"user:{u.id}:sessions",
                    f"Deactivated {u.email} still has an open session",
                    [_user_row(u)],
                )
            )
    total = count_of(
        select(func.count()).select_from(User).where(User.is_active.is_(True) | open_session)
    )
    return Outcome(total, drafts, failing, details)
