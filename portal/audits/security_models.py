"""The security monitor's own rows: alerts raised once per condition and window, and the
rate-limited requests counted per client address and hour."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from ..timeutil import utcnow
from ..users.models import User


class SecurityAlert(db.Model):
    """One alert. `(kind, key, window_start)` names the condition and the window it was
    seen in; the unique constraint is what makes a condition alert once per window, even
    when two processes see it at the same moment."""

    __tablename__ = "security_alerts"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))  # failed_sign_ins.account, new_admin, ...
    key: Mapped[str] = mapped_column(String(200))  # what it is about: user:5, ip:10.0.0.1
    window_start: Mapped[datetime]
    raised_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    subject: Mapped[str] = mapped_column(String(200))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    acknowledged_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    acknowledged_at: Mapped[datetime | None]

    acknowledged_by: Mapped[User | None] = relationship(lazy="joined")

    __table_args__ = (
        UniqueConstraint("kind", "key", "window_start", name="uq_security_alerts_condition"),
    )

    @property
    def is_acknowledged(self) -> bool:
        return self.acknowledged_at is not None


class RateLimitHit(db.Model):
    """Requests refused with 429 from one address in one clock hour (UTC): a counter
    added to in place (see refusals.py), so a flood adds one row per address and hour,
    not one per request."""

    __tablename__ = "rate_limit_hits"

    ip: Mapped[str] = mapped_column(String(45), primary_key=True)
    hour: Mapped[datetime] = mapped_column(primary_key=True)
    hits: Mapped[int] = mapped_column(default=0)
    # When counts were last added (hits are added every few seconds, not one by one).
    last_at: Mapped[datetime] = mapped_column(default=utcnow)

    # The security page sums the last day's hours.
    __table_args__ = (Index("ix_rate_limit_hits_hour", "hour"),)
