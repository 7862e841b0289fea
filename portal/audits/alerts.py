"""Security alerts: each condition raises once per window, by email to the security
contacts (SECURITY_CONTACTS), as a banner for admins and as a `security.alert` event.

What "once per condition per window" means here. A condition is a kind and a key (what
it is about: an account, an address, a new admin, an export); a window is a stretch of
clock time (UTC) it is counted in: the clock hour for failed sign-ins, the day for the
rest. The first time a condition holds in a window it raises; again in the same window it
raises nothing; in the next window, if it still holds, it raises again (an attack that
goes on is reported once an hour). The unique (kind, key, window) row is the whole
mechanism, so two processes seeing the same condition at once raise it once.

Failed sign-ins are counted over the last 60 minutes (a burst across the turn of an hour
is not missed) and deduplicated by the clock hour of the failure that crossed the line.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite

from .. import jobs, mail
from ..extensions import db
from ..timeutil import iso_utc, utcnow
from .models import AuditEvent
from .security_models import SecurityAlert
from .services import record
from .time_ids import first_id_at

log = logging.getLogger(__name__)
# A subject names what someone typed (a sign-in's email): one line, whatever they typed.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")

# "More than" these many failed sign-ins in an hour raise an alert.
FAILED_PER_ACCOUNT = 5
FAILED_PER_IP = 20
FAILURE_WINDOW = timedelta(hours=1)
FAILED = "auth.login_failed"

ACCOUNT_FAILURES = "failed_sign_ins.account"
IP_FAILURES = "failed_sign_ins.ip"
NEW_ADMIN = "new_admin"
CHAIN_BROKEN = "chain_broken"
LARGE_EXPORT = "large_export"
KIND_LABELS = {
    ACCOUNT_FAILURES: "Failed sign-ins (account)",
    IP_FAILURES: "Failed sign-ins (address)",
    NEW_ADMIN: "New admin",
    CHAIN_BROKEN: "Audit chain broken",
    LARGE_EXPORT: "Large export",
}


def hour_start(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def day_start(moment: datetime) -> datetime:
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def _insert_once(values: dict[str, Any]) -> int | None:
    """INSERT … ON CONFLICT DO NOTHING on the condition's unique key: the new row's id, or
    None when the window already has its alert (PostgreSQL waits for a concurrent insert
    of the same key to commit, then does nothing)."""
    dialect = db.session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = (
        insert(SecurityAlert)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["kind", "key", "window_start"])
        .returning(SecurityAlert.id)
    )
    return db.session.execute(statement).scalar()


def _email_body(subject: str, detail: dict[str, Any], raised_at: datetime) -> str:
    from ..web import external_url

    lines = [subject, "", f"Raised at {iso_utc(raised_at)} (UTC)."]
    lines += [f"{name}: {value}" for name, value in detail.items()]
    lines += [
        "",
        "Review and acknowledge it on the security page:",
        external_url("audits.security"),
    ]
    return "\n".join(lines) + "\n"


def raise_alert(
    kind: str, key: str, window_start: datetime, subject: str, detail: dict[str, Any]
) -> bool:
    """Raise the alert for (kind, key) in the window starting at `window_start`, unless it
    was raised already: True when it is raised now.

    Adds to the caller's transaction (the row, the `security.alert` event, one Outbox
    email per security contact); the emails are sent once the caller commits with
    `jobs.commit()`.
    """
    now = utcnow()
    subject = _CONTROL.sub(" ", subject)[:200]
    alert_id = _insert_once(
        {
            "kind": kind,
            "key": key[:200],
            "window_start": window_start,
            "raised_at": now,
            "subject": subject,
            "detail": detail,
        }
    )
    if alert_id is None:
        return False
    for contact in current_app.config["SETTINGS"].security_contacts:
        mail.send(contact, f"[Ops Portal security] {subject}", _email_body(subject, detail, now))
    record(
        "security.alert",
        None,
        ("securityalert", alert_id),
        kind=kind,
        key=key,
        window_start=window_start,
        subject=subject,
        detail=detail,
    )
    log.warning(
        "SECURITY_ALERT %s",
        subject,
        extra={"marker": "SECURITY_ALERT", "kind": kind, "key": key, "alert_id": alert_id},
    )
    return True


# -- the conditions --------------------------------------------------------------------------


def _failures_since(since: datetime, *where: Any) -> int:
    """Failed sign-ins matching `where` since `since`: read through the index whose
    columns `where` names, from the first id of the window on (ids rise with time)."""
    return (
        db.session.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(
                *where,
                AuditEvent.action == FAILED,
                AuditEvent.id >= first_id_at(since),
                AuditEvent.created_at >= since,
            )
        )
        or 0
    )


def after_failed_sign_in(event: AuditEvent) -> None:
    """Called with each `auth.login_failed` event: alert on more than 5 failures for its
    account, or more than 20 from its address, in the last hour."""
    since, window = event.created_at - FAILURE_WINDOW, hour_start(event.created_at)
    email = (event.data or {}).get("email", event.target_id)
    account = _failures_since(
        since, AuditEvent.target_type == event.target_type, AuditEvent.target_id == event.target_id
    )
    if account > FAILED_PER_ACCOUNT:
        raise_alert(
            ACCOUNT_FAILURES,
            f"{event.target_type}:{event.target_id}",
            window,
            f"{account} failed sign-ins for {email} in the last hour",
            {"account": email, "failures": account, "last_ip": event.ip},
        )
    if event.ip:
        from_ip = _failures_since(since, AuditEvent.ip == event.ip)
        if from_ip > FAILED_PER_IP:
            raise_alert(
                IP_FAILURES,
                f"ip:{event.ip}",
                window,
                f"{from_ip} failed sign-ins from {event.ip} in the last hour",
                {"ip": event.ip, "failures": from_ip, "last_account": email},
            )


def role_granted(email: str, role: str, actor: Any, target: Any) -> bool:
    """Called when someone is given a role (a role change, an invitation): alerts when it
    is admin. `target` is the user or the invitation; one alert per target and day."""
    if role != "admin":
        return False
    db.session.flush()
    kind_of = target.__class__.__name__.lower()
    by = getattr(actor, "email", None) or "system"
    how = "invited as admin" if kind_of == "invitation" else "made admin"
    return raise_alert(
        NEW_ADMIN,
        f"{kind_of}:{target.id}",
        day_start(utcnow()),
        f"New admin: {email} {how} by {by}",
        {"account": email, "by": by, "how": how},
    )


def chain_broken(summary: str) -> None:
    """Called by the audit chain's verification when it finds a break: alerts once a day
    with `summary`. Commits (with its emails): the verifier's own work is only reading,
    and this alert must not wait on, or be lost with, anyone else's transaction."""
    raise_alert(
        CHAIN_BROKEN,
        "audit_events",
        day_start(utcnow()),
        "The audit chain is broken",
        {"summary": summary[:2000]},
    )
    jobs.commit()


def export_finished(export: Any, rows: int) -> bool:
    """Called when an export's file is done: alerts when it holds more than
    EXPORT_ALERT_ROWS rows (0: never). One alert per export."""
    limit = current_app.config["SETTINGS"].EXPORT_ALERT_ROWS
    if limit <= 0 or rows <= limit:
        return False
    who = export.requested_by.email
    return raise_alert(
        LARGE_EXPORT,
        f"export:{export.id}",
        day_start(utcnow()),
        f"Export of {rows:,} rows ({export.kind}) by {who}",
        {"export": export.id, "kind": export.kind, "rows": rows, "by": who, "limit": limit},
    )


# -- reading and acknowledging ---------------------------------------------------------------

BANNER_DAYS = 7


def get_alert_or_404(alert_id: int) -> SecurityAlert:
    from flask import abort

    alert = db.session.get(SecurityAlert, alert_id) if 0 < alert_id < 2**31 else None
    if alert is None:
        abort(404)
    return alert


def acknowledge(alert: SecurityAlert, actor: Any) -> bool:
    """Mark the alert seen by `actor`; False (and nothing written) if it already was."""
    if alert.is_acknowledged:
        return False
    alert.acknowledged_by_id, alert.acknowledged_at = actor.id, utcnow()
    record(
        "security.alert_acknowledged",
        actor,
        ("securityalert", alert.id),
        kind=alert.kind,
        key=alert.key,
        subject=alert.subject,
    )
    jobs.commit()
    return True


def unacknowledged_summary(now: datetime | None = None, shown: int = 3) -> dict[str, Any]:
    """The banner's figures: how many alerts of the last 7 days nobody acknowledged, and
    the newest few subjects (plain values, so they can be cached)."""
    since = (now or utcnow()) - timedelta(days=BANNER_DAYS)
    open_alerts = (
        select(SecurityAlert.subject, func.count().over().label("total"))
        .where(SecurityAlert.acknowledged_at.is_(None), SecurityAlert.raised_at >= since)
        .order_by(SecurityAlert.raised_at.desc(), SecurityAlert.id.desc())
        .limit(shown)
    )
    rows = db.session.execute(open_alerts).all()
    return {"count": rows[0].total if rows else 0, "subjects": [row.subject for row in rows]}


def recent_alerts(limit: int = 50) -> list[SecurityAlert]:
    """The security page's list: newest first, with who acknowledged (one query)."""
    return list(
        db.session.scalars(
            select(SecurityAlert)
            .order_by(SecurityAlert.raised_at.desc(), SecurityAlert.id.desc())
            .limit(limit)
        )
    )
