"""How long each kind of record is kept (one row per kind, seeded by migration 0017)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import JSON, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from ..timeutil import utcnow

if TYPE_CHECKING:
    from ..users.models import User


class RetentionPolicy(db.Model):
    __tablename__ = "retention_policies"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(20), unique=True)
    days: Mapped[int]
    # None: the default the migration seeded, never edited.
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    updated_by: Mapped[User | None] = relationship("User", lazy="joined")


class RetentionRun(db.Model):
    """One retention run: what it archived and removed, per kind, and where the archive is."""

    __tablename__ = "retention_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    started_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    finished_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(10), default="running")  # running|done|failed
    # {"tickets": 12, "sessions": 340, ...}: the records of each kind removed.
    counts: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    archive_path: Mapped[str | None] = mapped_column(String(500))
    manifest_sha256: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(Text)

    @property
    def removed(self) -> int:
        return sum(self.counts.values()) if self.counts else 0
