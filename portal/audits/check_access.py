"""Checks of what happened to access in the run's period, read from the audit trail:
failed sign-ins, role changes, new admins. Each is a few aggregate or filtered queries
over one action's events in the period (found by id range); only failing rows reach
Python, and at most MAX_FINDINGS_PER_CHECK of them."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, func, select

from ..extensions import db
from ..security import Role
from ..users.models import User
from .check_types import EVIDENCE_ROWS, MAX_FINDINGS_PER_CHECK, Context, Draft, Outcome, iso
from .models import AuditEvent
from .time_ids import first_id_at

# Failed sign-ins in one day that make an account or an address a finding.
FAILED_PER_ACCOUNT = 5
FAILED_PER_ACCOUNT_HIGH = 20
FAILED_PER_IP = 20
ROLE_EVENTS = ("user.role_changed", "user.reactivated")
# Events of a day read into Python at most (role changes are a handful a day).
EVENT_ROWS_CAP = 10_000


def count_of(stmt: Any) -> int:
    return int(db.session.scalar(stmt) or 0)


def in_period(ctx: Context, *actions: str) -> list[ColumnElement[bool]]:
    """Events of `actions` in the run's period; the id range lets the primary key find
    the period without reading newer events (ids and times rise together)."""
    start, end = ctx.period_start, ctx.period_end
    return [
        AuditEvent.action.in_(actions),
        AuditEvent.created_at >= start,
        AuditEvent.created_at < end,
        AuditEvent.id >= first_id_at(start),
        AuditEvent.id < func.coalesce(first_id_at(end), 2**62),
    ]


def _first_events(
    conditions: list[ColumnElement[bool]], partition: Any, keys: Iterable[Any]
) -> dict[Any, list[dict[str, Any]]]:
    """The first EVIDENCE_ROWS events of each `partition` value in `keys`, one query."""
    keys = list(keys)
    if not keys:
        return {}
    number = func.row_number().over(partition_by=partition, order_by=AuditEvent.id).label("n")
    ranked = (
        select(
            AuditEvent.id,
            AuditEvent.created_at,
            AuditEvent.ip,
            AuditEvent.target_type,
            AuditEvent.target_id,
            AuditEvent.data,
            partition.label("part"),
            number,
        )
        .where(*conditions, partition.in_(keys))
        .subquery()
    )
    rows = db.session.execute(
        select(ranked).where(ranked.c.n <= EVIDENCE_ROWS).order_by(ranked.c.id)
    )
    found: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        data = row.data if isinstance(row.data, dict) else {}
        found[row.part].append(
            {
                "event_id": row.id,
                "at": iso(row.created_at),
                "ip": row.ip,
                "email": data.get("email"),
                "reason": data.get("reason"),
            }
        )
    return found


def failed_sign_ins(ctx: Context) -> Outcome:
    conditions = in_period(ctx, "auth.login_failed")
    # Accounts (or unknown addresses typed in) and client addresses, each with its count.
    target = AuditEvent.target_type + ":" + AuditEvent.target_id
    by_target = db.session.execute(
        select(target.label("key"), func.count().label("n"))
        .where(*conditions)
        .group_by(AuditEvent.target_type, AuditEvent.target_id)
    ).all()
    by_ip = db.session.execute(
        select(AuditEvent.ip, func.count().label("n"))
        .where(*conditions, AuditEvent.ip.is_not(None))
        .group_by(AuditEvent.ip)
    ).all()
    accounts = sorted((r for r in by_target if r.n >= FAILED_PER_ACCOUNT), key=lambda r: -r.n)
    addresses = sorted((r for r in by_ip if r.n >= FAILED_PER_IP), key=lambda r: -r.n)
    failing_total = len(accounts) + len(addresses)
    accounts = accounts[:MAX_FINDINGS_PER_CHECK]
    addresses = addresses[: max(0, MAX_FINDINGS_PER_CHECK - len(accounts))]
    account_rows = _first_events(conditions, target, [r.key for r in accounts])
    ip_rows = _first_events(conditions, AuditEvent.ip, [r.ip for r in addresses])
    drafts = []
    for row in accounts:
        rows = account_rows.get(row.key, [])
        who = next((r["email"] for r in rows if r["email"]), row.key.split(":", 1)[1])
        drafts.append(
            Draft(
                row.key,
                f"{row.n} failed sign-ins for {who} in one day",
                rows,
                row.n,
                "high" if row.n >= FAILED_PER_ACCOUNT_HIGH else None,
            )
        )
    for row in addresses:
        drafts.append(
            Draft(
                f"ip:{row.ip}",
                f"{row.n} failed sign-ins from {row.ip} in one day",
                ip_rows.get(row.ip, []),
                row.n,
                "high",
            )
        )
    return Outcome(len(by_target) + len(by_ip), drafts, failing_total)


def _period_events(ctx: Context, *actions: str) -> list[Any]:
    stmt = (
        select(
            AuditEvent.id,
            AuditEvent.created_at,
            AuditEvent.action,
            AuditEvent.actor_id,
            AuditEvent.actor_label,
            AuditEvent.target_type,
            AuditEvent.target_id,
            AuditEvent.data,
        )
        .where(*in_period(ctx, *actions))
        .order_by(AuditEvent.id)
        .limit(EVENT_ROWS_CAP)
    )
    return list(db.session.execute(stmt))


def _emails(user_ids: Iterable[int]) -> dict[int, str]:
    ids = sorted(set(user_ids))
    if not ids:
        return {}
    return dict(db.session.execute(select(User.id, User.email).where(User.id.in_(ids))).all())


def active_users(*conditions: ColumnElement[bool]) -> int:
    return count_of(
        select(func.count()).select_from(User).where(User.is_active.is_(True), *conditions)
    )


def _change_row(event: Any) -> dict[str, Any]:
    data = event.data if isinstance(event.data, dict) else {}
    before = (data.get("before") or {}).get("role") or (data.get("before") or {}).get("status")
    after = (data.get("after") or {}).get("role") or (data.get("after") or {}).get("status")
    return {
        "event_id": event.id,
        "at": iso(event.created_at),
        "action": event.action,
        "by": event.actor_label,
        "before": before,
        "after": after,
    }


def role_changes(ctx: Context) -> Outcome:
    changed: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for event in _period_events(ctx, *ROLE_EVENTS):
        if event.target_type == "user" and (event.target_id or "").isdigit():
            changed[int(event.target_id)].append(_change_row(event))
    emails = _emails(changed)
    drafts = []
    for user_id, rows in sorted(changed.items())[:MAX_FINDINGS_PER_CHECK]:
        last = rows[-1]
        what = f"{last['before']} → {last['after']}" if last["before"] else str(last["after"])
        title = f"Access of {emails.get(user_id, f'user {user_id}')} changed: {what}"
        drafts.append(Draft(f"user:{user_id}", title, rows))
    return Outcome(active_users(), drafts, len(changed))


def _admin_grant(event: Any) -> int | None:
    """The account an event made an admin, or None."""
    data = event.data if isinstance(event.data, dict) else {}
    if event.action in ("user.role_changed", "user.created"):
        role = (data.get("after") or {}).get("role")
        if role == Role.ADMIN and (event.target_id or "").isdigit():
            return int(event.target_id)
    elif event.action == "invitation.accepted" and data.get("role") == Role.ADMIN:
        return event.actor_id  # the new account accepts its own invitation
    return None


def new_admins(ctx: Context) -> Outcome:
    granted: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for event in _period_events(ctx, "user.role_changed", "user.created", "invitation.accepted"):
        user_id = _admin_grant(event)
        if user_id is not None:
            granted[user_id].append(
                {
                    "event_id": event.id,
                    "at": iso(event.created_at),
                    "action": event.action,
                    "by": event.actor_label,
                }
            )
    emails = _emails(granted)
    drafts = [
        Draft(f"user:{user_id}", f"{emails.get(user_id, f'user {user_id}')} became an admin", rows)
        for user_id, rows in sorted(granted.items())[:MAX_FINDINGS_PER_CHECK]
    ]
    admins = active_users(User.role == Role.ADMIN)
    return Outcome(max(admins, len(granted)), drafts, len(granted))
