"""Who sees and who works which change: the helpers every page, fragment and service uses,
so a list, a detail page and an action can never disagree."""

from __future__ import annotations

from typing import Any

from flask import abort
from sqlalchemy import Select, false, or_

from ..extensions import db
from ..security import Permission, Role, role_has
from ..users.models import User
from .models import ChangeRequest


def is_admin(user: User) -> bool:
    return user.role == Role.ADMIN


def sees_all(user: User) -> bool:
    return role_has(user.role, Permission.CHANGES_READ)


def is_involved(user: User, change: ChangeRequest) -> bool:
    """The requester and the implementer work a change; an admin works any."""
    return is_admin(user) or user.id in (change.requester_id, change.implementer_id)


def can_see(user: User, change: ChangeRequest) -> bool:
    if sees_all(user):
        return True
    return role_has(user.role, Permission.CHANGES_CREATE) and user.id in (
        change.requester_id,
        change.implementer_id,
    )


def visible(stmt: Select[Any], user: User) -> Select[Any]:
    """Narrow a query over change requests to those `user` may see."""
    if sees_all(user):
        return stmt
    if not role_has(user.role, Permission.CHANGES_CREATE):
        return stmt.where(false())
    return stmt.where(
        or_(ChangeRequest.requester_id == user.id, ChangeRequest.implementer_id == user.id)
    )


def get_change_or_404(change_id: int, user: User) -> ChangeRequest:
    """Load (missing → 404), then check access (someone else's change → 403)."""
    change = db.session.get(ChangeRequest, change_id) if 0 < change_id < 2**31 else None
    if change is None:
        abort(404)
    if not can_see(user, change):
        abort(403)
    return change
