"""Retention policies: reading them, editing one (audited), and what would go now."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import func, select

from .. import jobs
from ..audits.services import record
from ..errors import ServiceError
from ..extensions import db
from ..timeutil import utcnow
from ..users.models import User
from .kinds import BY_KEY, KINDS, MAX_DAYS, Kind
from .models import RetentionPolicy
from .records import expired


@dataclass(frozen=True)
class Due:
    """One kind's policy and how many of its rows have outlived it at `cutoff`."""

    kind: Kind
    policy: RetentionPolicy
    cutoff: datetime
    count: int


def policies() -> dict[str, RetentionPolicy]:
    """Every kind's policy; a kind whose row is missing gets its default (not stored)."""
    stored = {p.kind: p for p in db.session.scalars(select(RetentionPolicy))}
    return {
        kind.key: stored.get(kind.key) or RetentionPolicy(kind=kind.key, days=kind.default_days)
        for kind in KINDS
    }


def cutoff_for(policy: RetentionPolicy, now: datetime | None = None) -> datetime:
    return (now or utcnow()) - timedelta(days=policy.days)


def due_now(now: datetime | None = None) -> list[Due]:
    """Per kind, the rows that would go now: one count query per kind."""
    now = now or utcnow()
    found = policies()
    result = []
    for kind in KINDS:
        policy = found[kind.key]
        cutoff = cutoff_for(policy, now)
        count = db.session.scalar(
            select(func.count()).select_from(kind.model).where(expired(kind, cutoff))
        )
        result.append(Due(kind, policy, cutoff, int(count or 0)))
    return result


def export_retention_days() -> int:
    """Export files follow EXPORT_RETENTION_DAYS; reports/tasks.py cleanup_exports expires them."""
    return int(current_app.config["SETTINGS"].EXPORT_RETENTION_DAYS)


def set_days(kind_key: str, days: int, actor: User) -> RetentionPolicy:
    """Keep `kind_key` records `days` days; audited as retention.policy_changed. Commits."""
    kind = BY_KEY.get(kind_key)
    if kind is None:
        raise ServiceError("Choose a kind of record.", "kind")
    if not 1 <= days <= MAX_DAYS:
        raise ServiceError(f"Between 1 and {MAX_DAYS:,} days.", "days")
    policy = db.session.scalar(select(RetentionPolicy).where(RetentionPolicy.kind == kind_key))
    if policy is None:
        policy = RetentionPolicy(kind=kind_key, days=kind.default_days)
        db.session.add(policy)
    before = policy.days
    if before == days:
        return policy
    policy.days, policy.updated_by_id, policy.updated_at = days, actor.id, utcnow()
    record(
        "retention.policy_changed",
        actor,
        policy,
        kind=kind_key,
        before={"days": before},
        after={"days": days},
    )
    jobs.commit()  # record() may have asked for a checkpoint after the commit
    return policy
