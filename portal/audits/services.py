"""Recording and verifying the audit trail (DESIGN §6).

`record()` adds one row to the caller's transaction, so the change and its
event commit together or not at all. Each row's hash covers every field of the
row (id, time and actor included) plus the previous row's hash, in one
canonical serialisation; ids are assigned under a lock, one after the other,
so a deleted row leaves a gap that verification names.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from flask import current_app
from sqlalchemy import false, select, update

from ..client import client_ip, client_user_agent
from ..extensions import db
from ..timeutil import iso_utc, utcnow
from .models import AuditEvent

GENESIS_HASH = "0" * 64
# Any constant works; it only has to be the same for every writer.
CHAIN_LOCK_KEY = 0x0A0D17


def fingerprint(secret: str) -> str:
    """A keyed fingerprint: shows that a secret changed without revealing it."""
    key = current_app.config["SETTINGS"].AUDIT_HMAC_KEY.encode()
    return "hmac:" + hmac.new(key, secret.encode(), hashlib.sha256).hexdigest()[:16]


def _plain(value: Any) -> Any:
    """JSON-safe, float-free values, so the stored data hashes the same after a round trip."""
    if isinstance(value, datetime):
        return iso_utc(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [_plain(v) for v in value]
        return sorted(items, key=str) if isinstance(value, set | frozenset) else items
    if isinstance(value, bool | int | str) or value is None:
        return value
    return str(value)


def canonical(event: AuditEvent) -> bytes:
    body = {
        "id": event.id,
        "created_at": iso_utc(event.created_at),
        "actor_id": event.actor_id,
        "actor_label": event.actor_label,
        "ip": event.ip,
        "user_agent": event.user_agent,
        "action": event.action,
        "target_type": event.target_type,
        "target_id": event.target_id,
        "data": event.data,
        "prev_hash": event.prev_hash,
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def compute_hash(event: AuditEvent) -> str:
    return hashlib.sha256(canonical(event)).hexdigest()


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
        data=_plain(data),
        prev_hash=last.hash if last else GENESIS_HASH,
    )
    event.hash = compute_hash(event)
    db.session.add(event)
    db.session.flush()
    return event


def diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """The fields that changed, as {"before": {...}, "after": {...}}."""
    keys = [k for k in after if before.get(k) != after.get(k)]
    return {"before": {k: before.get(k) for k in keys}, "after": {k: after[k] for k in keys}}


@dataclass
class Problem:
    event_id: int
    kind: str  # edited | missing | broken-link
    detail: str

    def __str__(self) -> str:
        return f"row {self.event_id}: {self.kind}: {self.detail}"


@dataclass
class Verification:
    checked: int = 0
    last_id: int | None = None
    last_hash: str | None = None
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _events_in_order(batch: int = 1000) -> Iterator[AuditEvent]:
    stmt = select(AuditEvent).order_by(AuditEvent.id).execution_options(yield_per=batch)
    for event in db.session.scalars(stmt):
        yield event
        db.session.expunge(event)


def verify(stop_at_first: bool = False) -> Verification:
    """Walk the chain from the first row and name every row that breaks it."""
    result = Verification()
    expected_prev = GENESIS_HASH
    expected_id = 1
    for event in _events_in_order():
        result.checked += 1
        if event.id != expected_id:
            result.problems.append(
                Problem(
                    event.id,
                    "missing",
                    f"rows {expected_id}..{event.id - 1} were removed before this row",
                )
            )
        elif event.prev_hash != expected_prev:
            result.problems.append(
                Problem(
                    event.id,
                    "broken-link",
                    "does not follow the row before it (reordered or rewritten)",
                )
            )
        if compute_hash(event) != event.hash:
            result.problems.append(
                Problem(event.id, "edited", "its contents no longer match its hash")
            )
        if result.problems and stop_at_first:
            break
        # Continue from what the row claims, so one edit is reported once.
        expected_prev = event.hash
        expected_id = event.id + 1
        result.last_id, result.last_hash = event.id, event.hash
    return result


def events_for(target_type: str, target_id: int | str, limit: int = 50) -> list[AuditEvent]:
    stmt = (
        select(AuditEvent)
        .where(AuditEvent.target_type == target_type, AuditEvent.target_id == str(target_id))
        .order_by(AuditEvent.id.desc())
        .limit(limit)
    )
    return list(db.session.scalars(stmt))
