"""Exports: each one a row of its own (DESIGN §4), so the pages, the download check and
the audit trail never depend on Redis still holding the job."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from ..timeutil import utcnow
from ..users.models import User

STATUSES = ("queued", "running", "done", "failed", "cancelled", "expired")
ACTIVE = ("queued", "running")
STATUS_LABELS = {
    "queued": "Waiting to start",
    "running": "Building",
    "done": "Ready",
    "failed": "Failed",
    "cancelled": "Cancelled",
    "expired": "Expired",
}


class Export(db.Model):
    __tablename__ = "exports"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Chosen before the enqueue, so the row and the RQ job carry the same id from the start.
    job_id: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(20))  # a key of sources.SOURCES
    requested_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    # The list's filters exactly as its page reads them, written back without defaults.
    query: Mapped[str] = mapped_column(Text, default="")
    # What the asker could see when they asked (sources.Source.scope); a download needs
    # the same now, so a file never outlives the access it was made with.
    scope: Mapped[str] = mapped_column(String(40))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    status: Mapped[str] = mapped_column(String(10), default="queued")
    rows_done: Mapped[int] = mapped_column(BigInteger, default=0)
    rows_total: Mapped[int | None] = mapped_column(BigInteger)
    file_key: Mapped[str | None] = mapped_column(String(100))
    filename: Mapped[str | None] = mapped_column(String(255))
    size: Mapped[int | None] = mapped_column(BigInteger)
    sha256: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]

    requested_by: Mapped[User] = relationship(lazy="joined")

    __table_args__ = (
        Index("ix_exports_requested_by_created", "requested_by_id", "created_at"),
        # The cleanup and the reconciling sweep look for rows by status.
        Index("ix_exports_status", "status"),
    )

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE

    @property
    def status_label(self) -> str:
        return STATUS_LABELS.get(self.status, self.status)

    def percent(self, done: int | None = None) -> int:
        if self.status == "done":
            return 100
        done = self.rows_done if done is None else done
        if not self.rows_total:
            return 0
        return min(99, done * 100 // self.rows_total)


FREQUENCIES = ("weekly", "monthly")


class ReportSubscription(db.Model):
    """Someone's standing order for a report: built each week or month by the periodic
    job and emailed as a link, until they unsubscribe (from the portal or the email)."""

    __tablename__ = "report_subscriptions"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    report: Mapped[str] = mapped_column(String(30))  # a key of subscriptions.REPORTS
    frequency: Mapped[str] = mapped_column(String(10))
    # The report's filters, as its page writes them in the query string.
    filters: Mapped[str] = mapped_column(Text, default="")
    # Names the subscription in the email's unsubscribe link; nothing else.
    token: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None]

    user: Mapped[User] = relationship(lazy="joined")

    __table_args__ = (Index("ix_report_subscriptions_user", "user_id", "ended_at"),)


class ReportDelivery(db.Model):
    """One subscription's report for one period. Unique per (subscription, period): a
    periodic job that runs twice, or again after a worker died, finds the row and builds
    and emails nothing more."""

    __tablename__ = "report_deliveries"

    id: Mapped[int] = mapped_column(primary_key=True)
    subscription_id: Mapped[int] = mapped_column(
        ForeignKey("report_subscriptions.id", ondelete="CASCADE")
    )
    period: Mapped[str] = mapped_column(String(10))  # 2026-10 or 2026-W47
    export_id: Mapped[int | None] = mapped_column(ForeignKey("exports.id"))
    emailed_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    subscription: Mapped[ReportSubscription] = relationship(lazy="joined")
    export: Mapped[Export | None] = relationship(lazy="joined")

    __table_args__ = (
        UniqueConstraint("subscription_id", "period", name="uq_report_deliveries_period"),
    )
