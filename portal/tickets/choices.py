"""The teams, and the people who work tickets, as (id, name) pairs for the selects of the
list and the ticket page. Every page asks for the same pairs, so they are shared (see
portal/cache.py) until the teams or users tables change."""

from __future__ import annotations

from sqlalchemy import select

from .. import cache
from ..extensions import db
from ..security import Permission, Role, role_has
from ..users.models import User
from .setup_models import Team

Pairs = list[tuple[str, str]]


def _team_pairs() -> Pairs:
    return [
        (str(i), name)
        for i, name in db.session.execute(select(Team.id, Team.name).order_by(Team.name))
    ]


def _worker_pairs() -> Pairs:
    roles = [r.value for r in Role if role_has(r, Permission.TICKETS_WORK)]
    rows = db.session.execute(
        select(User.id, User.name)
        .where(User.role.in_(roles), User.is_active.is_(True))
        .order_by(User.name)
    )
    return [(str(i), name) for i, name in rows]


def _as_pairs(rows: list[list[str]] | Pairs) -> Pairs:
    """Tuples again after the JSON round trip: WTForms reads a list as something else."""
    return [(value, label) for value, label in rows]


def teams() -> Pairs:
    return _as_pairs(cache.shared(Team.__tablename__, "choices", _team_pairs))


def workers() -> Pairs:
    """Active people whose role works tickets: the assignees one may choose."""
    return _as_pairs(cache.shared(User.__tablename__, "workers", _worker_pairs))
