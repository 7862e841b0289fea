"""The security page's figures over the last 24 hours, each one query that lets the
database count (GROUP BY): no event is loaded into Python to be counted, and the page
runs the same number of queries whatever the traffic.

Every event query is bounded twice: by time, and by the id of the window's first event
(ids rise with time, see time_ids.first_id_at), so each reads its index from the start
of the window only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, String, and_, cast, distinct, exists, func, not_, select
from sqlalchemy.orm import aliased

from ..extensions import db
from ..timeutil import utcnow
from ..users.models import User
from .alerts import recent_alerts
from .models import AuditEvent
from .refusals import hour_of, pending_rate_limit_hits
from .security_models import RateLimitHit, SecurityAlert

WINDOW = timedelta(hours=24)
# Rows per table: the worst first; the audit log holds the rest.
SHOWN = 20
# A window with no event yet: an id beyond any (the largest the column holds on
# PostgreSQL); the time condition beside it keeps the answer exact regardless.
NO_EVENT = 2**31 - 1
ADMIN_GRANTS = ("user.role_changed", "user.created", "invitation.sent", "invitation.accepted")


@dataclass
class SecurityFigures:
    since: datetime
    failed_by_account: list[Row[Any]]
    failed_by_ip: list[Row[Any]]
    lockouts: list[Row[Any]]
    forbidden: list[Row[Any]]
    rate_limited: list[RateLimited]
    new_admins: list[Row[Any]]
    admin_actions: list[Row[Any]]
    new_addresses: list[Row[Any]]
    alerts: list[SecurityAlert]


def _first_id_since(since: datetime) -> int:
    first = db.session.scalar(
        select(AuditEvent.id)
        .where(AuditEvent.created_at >= since)
        .order_by(AuditEvent.created_at, AuditEvent.id)
        .limit(1)
    )
    return NO_EVENT if first is None else first


def _rows(statement: Any) -> list[Row[Any]]:
    return list(db.session.execute(statement).all())


def _in_window(since: datetime, since_id: int, *actions: str) -> list[Any]:
    action = (
        AuditEvent.action == actions[0] if len(actions) == 1 else AuditEvent.action.in_(actions)
    )
    return [action, AuditEvent.id >= since_id, AuditEvent.created_at >= since]


def _user_of_target() -> Any:
    """Join condition: the user an event is about (ids are kept as text on events)."""
    return and_(AuditEvent.target_type == "user", AuditEvent.target_id == cast(User.id, String))


def failed_by_account(since: datetime, since_id: int) -> list[Row[Any]]:
    last = func.max(AuditEvent.created_at).label("last_at")
    failures = func.count().label("failures")
    return _rows(
        select(
            AuditEvent.target_type,
            AuditEvent.target_id,
            func.max(AuditEvent.data["email"].as_string()).label("email"),
            failures,
            func.count(distinct(AuditEvent.ip)).label("addresses"),
            last,
        )
        .where(*_in_window(since, since_id, "auth.login_failed"))
        .group_by(AuditEvent.target_type, AuditEvent.target_id)
        .order_by(failures.desc(), last.desc())
        .limit(SHOWN)
    )


def failed_by_ip(since: datetime, since_id: int) -> list[Row[Any]]:
    last = func.max(AuditEvent.created_at).label("last_at")
    failures = func.count().label("failures")
    return _rows(
        select(
            AuditEvent.ip,
            failures,
            func.count(distinct(AuditEvent.target_id)).label("accounts"),
            last,
        )
        .where(*_in_window(since, since_id, "auth.login_failed"), AuditEvent.ip.is_not(None))
        .group_by(AuditEvent.ip)
        .order_by(failures.desc(), last.desc())
        .limit(SHOWN)
    )


def lockouts(since: datetime, since_id: int) -> list[Row[Any]]:
    last = func.max(AuditEvent.created_at).label("last_at")
    return _rows(
        select(
            AuditEvent.target_type,
            AuditEvent.target_id,
            func.max(User.email).label("email"),
            func.count().label("lockouts"),
            last,
            func.max(User.locked_until).label("locked_until"),
        )
        .outerjoin(User, _user_of_target())
        .where(*_in_window(since, since_id, "auth.locked"))
        .group_by(AuditEvent.target_type, AuditEvent.target_id)
        .order_by(last.desc())
        .limit(SHOWN)
    )


def forbidden(since: datetime, since_id: int) -> list[Row[Any]]:
    last = func.max(AuditEvent.created_at).label("last_at")
    refused = func.count().label("refused")
    endpoint = AuditEvent.data["endpoint"].as_string()
    return _rows(
        select(
            AuditEvent.actor_id,
            AuditEvent.actor_label,
            endpoint.label("endpoint"),
            refused,
            func.max(AuditEvent.data["path"].as_string()).label("path"),
            last,
        )
        .where(*_in_window(since, since_id, "auth.forbidden"))
        .group_by(AuditEvent.actor_id, AuditEvent.actor_label, endpoint)
        .order_by(refused.desc(), last.desc())
        .limit(SHOWN)
    )


@dataclass
class RateLimited:
    ip: str
    hits: int
    hours: int
    last_at: datetime | None


def rate_limited(since: datetime) -> list[RateLimited]:
    """Per address, in whole hours (the counters are per clock hour): the rows' sums, plus
    the few counts still waiting in Redis to be written (see refusals.py)."""
    start = hour_of(since)
    hits = func.sum(RateLimitHit.hits).label("hits")
    rows = {
        row.ip: RateLimited(row.ip, int(row.hits), row.hours, row.last_at)
        for row in _rows(
            select(
                RateLimitHit.ip,
                hits,
                func.count().label("hours"),
                func.max(RateLimitHit.last_at).label("last_at"),
            )
            .where(RateLimitHit.hour >= start)
            .group_by(RateLimitHit.ip)
            .order_by(hits.desc())
            .limit(SHOWN)
        )
    }
    for ip, waiting in pending_rate_limit_hits(start).items():
        row = rows.setdefault(ip, RateLimited(ip, 0, 1, None))
        row.hits += waiting
    return sorted(rows.values(), key=lambda row: -row.hits)[:SHOWN]


def new_admins(since: datetime, since_id: int) -> list[Row[Any]]:
    """Role changes to admin, admins created, invited and joining."""
    role = func.coalesce(
        AuditEvent.data["after"]["role"].as_string(), AuditEvent.data["role"].as_string()
    )
    account = func.coalesce(
        AuditEvent.data["email"].as_string(),
        AuditEvent.data["after"]["email"].as_string(),
        User.email,
    )
    return _rows(
        select(
            AuditEvent.id,
            AuditEvent.created_at,
            AuditEvent.action,
            AuditEvent.actor_id,
            AuditEvent.actor_label,
            AuditEvent.target_type,
            AuditEvent.target_id,
            account.label("account"),
        )
        .outerjoin(User, _user_of_target())
        .where(*_in_window(since, since_id, *ADMIN_GRANTS), role == "admin")
        .order_by(AuditEvent.id.desc())
        .limit(SHOWN)
    )


def admin_actions(since: datetime, since_id: int) -> list[Row[Any]]:
    """Changes by accounts that are admins now (signing in and downloads are not changes,
    as for the ADMIN_ACTION log line); read per admin through the (actor_id, id) index."""
    last = func.max(AuditEvent.created_at).label("last_at")
    admins = select(User.id).where(User.role == "admin").scalar_subquery()
    return _rows(
        select(
            AuditEvent.actor_id,
            AuditEvent.actor_label,
            AuditEvent.action,
            func.count().label("times"),
            last,
        )
        .where(
            AuditEvent.actor_id.in_(admins),
            AuditEvent.id >= since_id,
            AuditEvent.created_at >= since,
            not_(AuditEvent.action.startswith("auth.")),
            not_(AuditEvent.action.endswith(".downloaded")),
        )
        .group_by(AuditEvent.actor_id, AuditEvent.actor_label, AuditEvent.action)
        .order_by(last.desc())
        .limit(SHOWN * 2)
    )


def new_addresses(since: datetime, since_id: int) -> list[Row[Any]]:
    """Sign-ins from an address the person never signed in from before: per person and
    address in the window, the first sign-in there, kept when no earlier one exists."""
    window = (
        select(
            AuditEvent.actor_id,
            AuditEvent.ip,
            func.max(AuditEvent.actor_label).label("actor_label"),
            func.min(AuditEvent.id).label("first_id"),
            func.min(AuditEvent.created_at).label("first_at"),
            func.count().label("sign_ins"),
        )
        .where(
            *_in_window(since, since_id, "auth.login"),
            AuditEvent.actor_id.is_not(None),
            AuditEvent.ip.is_not(None),
        )
        .group_by(AuditEvent.actor_id, AuditEvent.ip)
        .subquery()
    )
    prior = aliased(AuditEvent)
    seen_before = exists().where(
        prior.actor_id == window.c.actor_id,
        prior.id < window.c.first_id,
        prior.action == "auth.login",
        prior.ip == window.c.ip,
    )
    return _rows(
        select(window).where(not_(seen_before)).order_by(window.c.first_at.desc()).limit(SHOWN)
    )


def security_figures(now: datetime | None = None) -> SecurityFigures:
    """Everything the page shows, for the 24 hours up to `now`."""
    since = (now or utcnow()) - WINDOW
    since_id = _first_id_since(since)
    return SecurityFigures(
        since=since,
        failed_by_account=failed_by_account(since, since_id),
        failed_by_ip=failed_by_ip(since, since_id),
        lockouts=lockouts(since, since_id),
        forbidden=forbidden(since, since_id),
        rate_limited=rate_limited(since),
        new_admins=new_admins(since, since_id),
        admin_actions=admin_actions(since, since_id),
        new_addresses=new_addresses(since, since_id),
        alerts=recent_alerts(),
    )
