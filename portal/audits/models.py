"""The append-only audit trail: one row per recorded action, chained by hash."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from ..timeutil import utcnow
from .json_column import CanonicalJSON

if TYPE_CHECKING:
    from ..users.models import User


class AuditEvent(db.Model):
    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # Kept as text too, so the event still says who it was if the account changes.
    actor_label: Mapped[str] = mapped_column(String(254))
    ip: Mapped[str | None] = mapped_column(String(45))
    user_agent: Mapped[str | None] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(64))
    target_type: Mapped[str | None] = mapped_column(String(40))
    target_id: Mapped[str | None] = mapped_column(String(64))
    data: Mapped[dict[str, Any]] = mapped_column(CanonicalJSON, default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)

    # Each filter of the audit log with the id after it, so a filtered page is read in
    # id order straight from the index (keyset paging, newest first).
    __table_args__ = (
        Index("ix_audit_events_target_id", "target_type", "target_id", "id"),
        Index("ix_audit_events_actor_id_id", "actor_id", "id"),
        Index("ix_audit_events_action_id", "action", "id"),
        Index("ix_audit_events_ip_id", "ip", "id"),
    )

    def __repr__(self) -> str:
        return f"<AuditEvent {self.id} {self.action}>"


class AuditCheckpoint(db.Model):
    """The chain's head at one moment, also written out of the database (a file and
    email): what a checkpoint saw must still be there, with the same hash."""

    __tablename__ = "audit_checkpoints"

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    event_count: Mapped[int]
    # One checkpoint per head: a job that runs twice finds its head written already.
    last_id: Mapped[int] = mapped_column(unique=True)
    last_hash: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(20))  # periodic | every | manual


class VerificationRun(db.Model):
    """One verification of the whole chain: who asked, how far it got, what it found."""

    __tablename__ = "audit_verification_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    # None: the periodic job or the command line.
    requested_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    status: Mapped[str] = mapped_column(String(10), default="queued")  # queued|running|done|failed
    checked: Mapped[int] = mapped_column(default=0)
    total: Mapped[int] = mapped_column(default=0)
    ok: Mapped[bool | None]
    # [{"event_id": 12, "kind": "edited", "detail": "..."}, ...]
    problems: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    error: Mapped[str | None] = mapped_column(Text)
    # The chain's head when the run ended: what it proved.
    head_id: Mapped[int | None]
    head_hash: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]

    requested_by: Mapped[User | None] = relationship("User", lazy="joined")

    @property
    def is_active(self) -> bool:
        return self.status in ("queued", "running")

    @property
    def percent(self) -> int:
        if self.status == "done":
            return 100
        return min(99, self.checked * 100 // self.total) if self.total > 0 else 0
