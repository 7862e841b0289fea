"""Recording the audit trail (DESIGN §6); verification lives in verification.py.

`record()` adds one row to the caller's transaction, so the change and its
event commit together or not at all. Each row's hash covers every field of the
row (id, time and actor included) plus the previous row's hash, in one
canonical serialisation; ids are assigned under a lock, one after the other,
so a deleted row leaves a gap that verification names.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from flask import current_app
from sqlalchemy import false, func, select, update

from .. import jobs, logs
from ..client import client_ip, client_user_agent
from ..extensions import db
from ..timeutil import utcnow
from .chain import GENESIS_HASH, event_values, plain, row_hash
from .models import AuditEvent
from .verification import Problem, Verification, verify

__all__ = [
    "GENESIS_HASH",
    "Problem",
    "Verification",
    "allow_retention_in_this_transaction",
    "compute_hash",
    "diff",
    "events_for",
    "fingerprint",
    "record",
    "verify",
]
# Any constant works; it only has to be the same for every writer.
CHAIN_LOCK_KEY = 0x0A0D17


def fingerprint(secret: str) -> str:
    """A keyed fingerprint: shows that a secret changed without revealing it."""
    key = current_app.config["SETTINGS"].AUDIT_HMAC_KEY.encode()
    return "hmac:" + hmac.new(key, secret.encode(), hashlib.sha256).hexdigest()[:16]


def compute_hash(event: AuditEvent) -> str:
    """The hash an ORM event should carry (the same function verification uses)."""
    return row_hash(event_values(event))


def _lock_chain() -> None:
    """Serialise appends until this transaction ends, so the chain never forks."""
    dialect = db.session.get_bind().dialect.name
    if dialect == "postgresql":
        db.session.execute(select(db.func.pg_advisory_xact_lock(CHAIN_LOCK_KEY)))
    elif dialect == "sqlite":
        # A write that changes nothing still takes SQLite's one write lock (waiting for it
        # up to busy_timeout), so reading the chain head and appending are one step.
        db.session.execute(update(AuditEvent).where(false()).values(id=AuditEvent.id))


def _target_of(target: Any) -> tuple[str | None, str | None]:
    if target is None:
        return None, None
    if isinstance(target, tuple):
        return str(target[0]), str(target[1])
    return target.__class__.__name__.lower(), str(target.id)


def record(action: str, actor: Any = None, target: Any = None, **data: Any) -> AuditEvent:
    """Append an event for `action` by `actor` on `target` to the current transaction.

    `actor` is a User or None (the system); `target` a model instance, a
    `(type, id)` pair, or None. Keyword data (before/after values and the
    like) must never hold a secret: pass `fingerprint(secret)` instead.
    """
    if target is not None and not isinstance(target, tuple) and target.id is None:
        db.session.flush()
    target_type, target_id = _target_of(target)
    ip, user_agent = client_ip(), client_user_agent()
    actor_id = getattr(actor, "id", None)
    actor_label = getattr(actor, "email", None) or "system"

    _lock_chain()
    last = db.session.execute(
        select(AuditEvent.id, AuditEvent.hash).order_by(AuditEvent.id.desc()).limit(1)
    ).first()
    event = AuditEvent(
        id=(last.id + 1) if last else 1,
        created_at=utcnow(),
        actor_id=actor_id,
        actor_label=actor_label,
        ip=ip,
        user_agent=user_agent,
        action=action,
        target_type=target_type,
        target_id=target_id,
        data=plain(data),
        prev_hash=last.hash if last else GENESIS_HASH,
    )
    event.hash = compute_hash(event)
    db.session.add(event)
    db.session.flush()
    _checkpoint_when_due(event.id)
    logs.audit_recorded(event, actor)  # an admin's change: ADMIN_ACTION once committed
    return event


def _checkpoint_when_due(event_id: int) -> None:
    """Every AUDIT_CHECKPOINT_EVERY events, a checkpoint once this event has committed
    (the hourly one catches a head whose commit path never started its jobs)."""
    every = current_app.config["SETTINGS"].AUDIT_CHECKPOINT_EVERY
    if every > 0 and event_id % every == 0:
        from .checkpoints import checkpoint_job

        jobs.after_commit(checkpoint_job, "every")


def allow_retention_in_this_transaction() -> None:
    """Let this transaction update or delete audit events (the retention job only).

    On PostgreSQL a trigger refuses both unless the transaction-local flag is set; the
    flag ends with the transaction. SQLite has no such trigger: nothing to do.
    """
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(select(func.set_config("portal.audit_retention", "on", True)))


def diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """The fields that changed, as {"before": {...}, "after": {...}}."""
    keys = [k for k in after if before.get(k) != after.get(k)]
    return {"before": {k: before.get(k) for k in keys}, "after": {k: after[k] for k in keys}}


def events_for(target_type: str, target_id: int | str, limit: int = 50) -> list[AuditEvent]:
    stmt = (
        select(AuditEvent)
        .where(AuditEvent.target_type == target_type, AuditEvent.target_id == str(target_id))
        .order_by(AuditEvent.id.desc())
        .limit(limit)
    )
    return list(db.session.scalars(stmt))
