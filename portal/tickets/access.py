"""Who sees which ticket: the one helper every page, fragment, download and export uses,
so a list and a detail page can never disagree."""

from __future__ import annotations

from typing import Any

from flask import abort
from sqlalchemy import Select, false

from ..extensions import db
from ..security import Permission, role_has
from ..users.models import User
from .models import Ticket


def sees_all(user: User) -> bool:
    return role_has(user.role, Permission.TICKETS_READ_ALL)


def can_see(user: User, ticket: Ticket) -> bool:
    if sees_all(user):
        return True
    return role_has(user.role, Permission.TICKETS_READ) and ticket.requester_id == user.id


def visible(stmt: Select[Any], user: User) -> Select[Any]:
    """Narrow a query over tickets to those `user` may see."""
    if sees_all(user):
        return stmt
    if not role_has(user.role, Permission.TICKETS_READ):
        return stmt.where(false())
    return stmt.where(Ticket.requester_id == user.id)


def get_ticket_or_404(ticket_id: int, user: User) -> Ticket:
    """Load (missing → 404), then check access (someone else's ticket → 403)."""
    ticket = db.session.get(Ticket, ticket_id)
    if ticket is None:
        abort(404)
    if not can_see(user, ticket):
        abort(403)
    return ticket


def can_reply(user: User, ticket: Ticket) -> bool:
    """Agents and admins reply to any ticket; a requester to their own."""
    if role_has(user.role, Permission.TICKETS_WORK):
        return True
    return ticket.requester_id == user.id and can_see(user, ticket)


def can_see_internal(user: User) -> bool:
    """Internal notes: only for those who may see every ticket."""
    return sees_all(user)
