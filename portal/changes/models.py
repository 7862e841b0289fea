"""Change requests, the votes on them, their field history, the conflicts someone
acknowledged when scheduling, emergency retrospectives and the reminders already sent."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, ForeignKey, Index, String, Table, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from ..tickets.models import Ticket
from ..timeutil import utcnow
from ..users.models import User
from .setup_models import Service, StandardTemplate

TYPES = ("standard", "normal", "emergency")
STATUSES = (
    "draft",
    "submitted",
    "in_review",
    "approved",
    "rejected",
    "scheduled",
    "implementing",
    "validating",
    "completed",
    "failed",
    "closed",
)
STATUS_LABELS = {
    "draft": "Draft",
    "submitted": "Submitted",
    "in_review": "In review",
    "approved": "Approved",
    "rejected": "Rejected",
    "scheduled": "Scheduled",
    "implementing": "Implementing",
    "validating": "Validating",
    "completed": "Completed",
    "failed": "Failed (rolled back)",
    "closed": "Closed",
}
# A change in one of these holds its window on its services: others overlapping it conflict.
# Validation happens inside the window, so a validating change still holds it.
WINDOW_HOLDING = ("scheduled", "implementing", "validating")
# Only these may be edited; anything later was reviewed as it stands.
EDITABLE = ("draft", "rejected")
DECISIONS = ("approve", "reject")

change_services = Table(
    "change_services",
    db.metadata,
    Column("change_id", ForeignKey("change_requests.id", ondelete="CASCADE"), primary_key=True),
    Column("service_id", ForeignKey("services.id"), primary_key=True),
    # The conflict check starts from a service and looks for its other changes.
    Index("ix_change_services_service_id", "service_id"),
)

change_tickets = Table(
    "change_tickets",
    db.metadata,
    Column("change_id", ForeignKey("change_requests.id", ondelete="CASCADE"), primary_key=True),
    Column("ticket_id", ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True),
    Index("ix_change_tickets_ticket_id", "ticket_id"),
)


class ChangeLabels:
    """How a change is named and labelled, for the model and for the plain rows the
    calendar reads without it."""

    id: int
    status: str
    type: str

    @property
    def number(self) -> str:
        return f"CR-{self.id:06d}"

    @property
    def status_label(self) -> str:
        return STATUS_LABELS[self.status]

    @property
    def is_emergency(self) -> bool:
        return self.type == "emergency"


class ChangeRequest(ChangeLabels, db.Model):
    __tablename__ = "change_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    type: Mapped[str] = mapped_column(String(10), default="normal")
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    justification: Mapped[str] = mapped_column(Text, default="")
    success_criteria: Mapped[str] = mapped_column(Text, default="")
    impact: Mapped[int] = mapped_column(default=1)
    likelihood: Mapped[int] = mapped_column(default=1)
    # Derived from impact × likelihood (risk.py), kept so lists can filter on it.
    risk: Mapped[str] = mapped_column(String(6), default="low")
    implementation_plan: Mapped[str] = mapped_column(Text, default="")
    rollback_plan: Mapped[str] = mapped_column(Text, default="")
    # The planned window, [start, end) in naive UTC.
    window_start: Mapped[datetime | None]
    window_end: Mapped[datetime | None]
    requester_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    implementer_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    template_id: Mapped[int | None] = mapped_column(ForeignKey("standard_templates.id"))
    status: Mapped[str] = mapped_column(String(12), default="draft")
    # Votes belong to a round; resubmitting starts a new one, so earlier votes stop
    # counting but stay on record.
    approval_round: Mapped[int] = mapped_column(default=1)
    rejection_reason: Mapped[str | None] = mapped_column(Text)
    # Why an emergency change was scheduled inside a freeze.
    freeze_reason: Mapped[str | None] = mapped_column(Text)
    validation_results: Mapped[str] = mapped_column(Text, default="")
    outcome: Mapped[str] = mapped_column(Text, default="")
    lessons_learned: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    status_changed_at: Mapped[datetime] = mapped_column(default=utcnow)
    submitted_at: Mapped[datetime | None]
    decided_at: Mapped[datetime | None]
    scheduled_at: Mapped[datetime | None]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]

    requester: Mapped[User] = relationship(foreign_keys=[requester_id], lazy="joined")
    implementer: Mapped[User | None] = relationship(foreign_keys=[implementer_id], lazy="joined")
    template: Mapped[StandardTemplate | None] = relationship()
    services: Mapped[list[Service]] = relationship(secondary=change_services, order_by=Service.name)
    tickets: Mapped[list[Ticket]] = relationship(secondary=change_tickets, order_by=Ticket.id)
    votes: Mapped[list[ChangeVote]] = relationship(
        back_populates="change", order_by="ChangeVote.id", cascade="all, delete-orphan"
    )
    review: Mapped[ChangeReview | None] = relationship(
        back_populates="change", cascade="all, delete-orphan"
    )

    __table_args__ = (
        Index("ix_change_requests_status_window_start", "status", "window_start"),
        Index("ix_change_requests_window", "window_start", "window_end"),
        Index("ix_change_requests_requester_created", "requester_id", "created_at"),
        Index("ix_change_requests_implementer_status", "implementer_id", "status"),
        Index("ix_change_requests_risk_status", "risk", "status"),
        Index("ix_change_requests_created_at", "created_at"),
    )

    @property
    def is_pre_approved(self) -> bool:
        """A standard change made from a template: it needs no votes."""
        return self.type == "standard" and self.template_id is not None

    @property
    def current_votes(self) -> list[ChangeVote]:
        return [v for v in self.votes if v.round == self.approval_round]


class ChangeVote(db.Model):
    """One approver's decision in one approval round, with when and why."""

    __tablename__ = "change_votes"
    __table_args__ = (
        UniqueConstraint("change_id", "round", "approver_id"),
        Index("ix_change_votes_approver_created", "approver_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    change_id: Mapped[int] = mapped_column(ForeignKey("change_requests.id", ondelete="CASCADE"))
    round: Mapped[int]
    approver_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    decision: Mapped[str] = mapped_column(String(7))  # approve | reject
    comment: Mapped[str] = mapped_column(Text, default="")
    # The approver's role when voting: what counted for "one admin" at the time.
    approver_role: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    change: Mapped[ChangeRequest] = relationship(back_populates="votes")
    approver: Mapped[User] = relationship(lazy="joined")


class ChangeHistory(db.Model):
    """One field change: who, when, old → new (and why, where there is a why)."""

    __tablename__ = "change_history"

    id: Mapped[int] = mapped_column(primary_key=True)
    change_id: Mapped[int] = mapped_column(ForeignKey("change_requests.id", ondelete="CASCADE"))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    field: Mapped[str] = mapped_column(String(30))
    # Plans are long and their history matters, so values are kept whole.
    old_value: Mapped[str | None] = mapped_column(Text)
    new_value: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(String(1000))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    actor: Mapped[User | None] = relationship(lazy="joined")

    __table_args__ = (Index("ix_change_history_change_id", "change_id", "id"),)


class ConflictAcknowledgement(db.Model):
    """Someone scheduled a change knowing its window overlaps another's on a shared
    service; both windows are kept as they were at that moment."""

    __tablename__ = "change_conflict_acks"

    id: Mapped[int] = mapped_column(primary_key=True)
    change_id: Mapped[int] = mapped_column(ForeignKey("change_requests.id", ondelete="CASCADE"))
    other_change_id: Mapped[int] = mapped_column(
        ForeignKey("change_requests.id", ondelete="CASCADE")
    )
    window_start: Mapped[datetime]
    window_end: Mapped[datetime]
    other_window_start: Mapped[datetime]
    other_window_end: Mapped[datetime]
    # Names of the shared services, comma-separated, as they were.
    services: Mapped[str] = mapped_column(String(500))
    acknowledged_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    other_change: Mapped[ChangeRequest] = relationship(foreign_keys=[other_change_id])
    acknowledged_by: Mapped[User] = relationship(lazy="joined")

    __table_args__ = (Index("ix_change_conflict_acks_change_id", "change_id", "id"),)


class ChangeReview(db.Model):
    """The retrospective an emergency change needs before it can close."""

    __tablename__ = "change_reviews"

    id: Mapped[int] = mapped_column(primary_key=True)
    change_id: Mapped[int] = mapped_column(
        ForeignKey("change_requests.id", ondelete="CASCADE"), unique=True
    )
    findings: Mapped[str] = mapped_column(Text, default="")
    emergency_justified: Mapped[bool] = mapped_column(default=True)
    reviewer_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    change: Mapped[ChangeRequest] = relationship(back_populates="review")
    reviewer: Mapped[User] = relationship(lazy="joined")

    @property
    def is_complete(self) -> bool:
        return bool(self.findings.strip())


class ChangeReminder(db.Model):
    """One reminder per change, kind and window: the unique key makes sending idempotent,
    and a rescheduled window gets reminders of its own."""

    __tablename__ = "change_reminders"
    __table_args__ = (UniqueConstraint("change_id", "kind", "window_start"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    change_id: Mapped[int] = mapped_column(ForeignKey("change_requests.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(12))  # day_before | window_open
    window_start: Mapped[datetime]
    sent_at: Mapped[datetime] = mapped_column(default=utcnow)
