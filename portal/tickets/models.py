"""Tickets, their replies, their field history and the SLA events their clocks replay."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from ..timeutil import utcnow
from ..users.models import User
from .setup_models import Category, Team

TYPES = ("request", "incident")
STATUSES = ("new", "assigned", "in_progress", "pending", "resolved", "closed")
OPEN_STATUSES = ("new", "assigned", "in_progress", "pending")
SLA_STATES = ("on_track", "at_risk", "breached", "met")
# Incidents show priorities as severities.
SEVERITY = {"critical": "P0", "high": "P1", "medium": "P2", "low": "P3"}

STATUS_LABELS = {
    "new": "New",
    "assigned": "Assigned",
    "in_progress": "In progress",
    "pending": "Pending",
    "resolved": "Resolved",
    "closed": "Closed",
}


class Ticket(db.Model):
    __tablename__ = "tickets"

    id: Mapped[int] = mapped_column(primary_key=True)
    type: Mapped[str] = mapped_column(String(10), default="request")
    subject: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    category_id: Mapped[int | None] = mapped_column(ForeignKey("categories.id"))
    priority: Mapped[str] = mapped_column(String(10), default="medium")
    status: Mapped[str] = mapped_column(String(12), default="new")
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"))
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    requester_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    level: Mapped[str] = mapped_column(String(2), default="L1")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    status_changed_at: Mapped[datetime] = mapped_column(default=utcnow)
    first_response_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    # Derived from the SLA events (recomputed on every change and by the sweep),
    # kept here so lists can show and filter them without replaying clocks.
    response_due_at: Mapped[datetime | None]
    resolution_due_at: Mapped[datetime | None]
    sla_state: Mapped[str] = mapped_column(String(10), default="on_track")
    # Each clock's own badge, its business seconds once stopped (pauses excluded, per the
    # SLA calendar) and the time spent pending: what exports and reports read, in SQL.
    response_state: Mapped[str | None] = mapped_column(String(10))
    resolution_state: Mapped[str | None] = mapped_column(String(10))
    response_seconds: Mapped[int | None]
    resolution_seconds: Mapped[int | None]
    paused_seconds: Mapped[int | None]

    category: Mapped[Category | None] = relationship(lazy="joined")
    team: Mapped[Team | None] = relationship(lazy="joined")
    assignee: Mapped[User | None] = relationship(foreign_keys=[assignee_id], lazy="joined")
    requester: Mapped[User] = relationship(foreign_keys=[requester_id], lazy="joined")

    __table_args__ = (
        Index("ix_tickets_status_priority", "status", "priority"),
        Index("ix_tickets_team_status", "team_id", "status"),
        # Team + priority filters with their per-status counts, read from the index alone.
        Index("ix_tickets_team_priority_status", "team_id", "priority", "status"),
        Index("ix_tickets_assignee_status", "assignee_id", "status"),
        Index("ix_tickets_requester_created", "requester_id", "created_at"),
        Index("ix_tickets_sla_state", "sla_state"),
        Index("ix_tickets_created_at", "created_at"),
        # Reports and the dashboard count what was answered or resolved in a period.
        Index("ix_tickets_first_response_at", "first_response_at"),
        Index("ix_tickets_resolved_at", "resolved_at"),
        # The backlog at a moment reads tickets closed in that moment's day (reports/rollups).
        Index("ix_tickets_closed_at", "closed_at"),
    )

    @property
    def number(self) -> str:
        return f"T-{self.id:06d}"

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def priority_label(self) -> str:
        if self.type == "incident":
            return f"{SEVERITY[self.priority]} ({self.priority})"
        return self.priority

    @property
    def status_label(self) -> str:
        return STATUS_LABELS[self.status]


class TicketReply(db.Model):
    __tablename__ = "ticket_replies"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    body: Mapped[str] = mapped_column(Text)
    # Internal notes are never shown or emailed to requesters.
    is_internal: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    author: Mapped[User] = relationship(lazy="joined")

    __table_args__ = (Index("ix_ticket_replies_ticket_created", "ticket_id", "created_at"),)


class TicketChange(db.Model):
    """One field change: who, when, old → new (and why, for escalations)."""

    __tablename__ = "ticket_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    field: Mapped[str] = mapped_column(String(30))
    old_value: Mapped[str | None] = mapped_column(String(200))
    new_value: Mapped[str | None] = mapped_column(String(200))
    reason: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    actor: Mapped[User | None] = relationship(lazy="joined")

    __table_args__ = (Index("ix_ticket_changes_ticket_id", "ticket_id", "id"),)


class SlaEvent(db.Model):
    """A start, pause, resume, stop or target change of one of a ticket's two clocks.
    Due times are recomputed from these and the calendar, so they can be explained."""

    __tablename__ = "sla_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    clock: Mapped[str] = mapped_column(String(10))  # response | resolution
    kind: Mapped[str] = mapped_column(String(10))  # start | pause | resume | stop | target
    at: Mapped[datetime] = mapped_column(default=utcnow)
    target_seconds: Mapped[int | None]
    note: Mapped[str | None] = mapped_column(String(200))

    __table_args__ = (Index("ix_sla_events_ticket_id", "ticket_id", "id"),)


class SlaNotification(db.Model):
    """One email per clock per threshold: the unique key makes sending idempotent."""

    __tablename__ = "sla_notifications"
    __table_args__ = (UniqueConstraint("ticket_id", "clock", "threshold"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    clock: Mapped[str] = mapped_column(String(10))  # response | resolution
    threshold: Mapped[str] = mapped_column(String(10))  # at_risk | breached
    sent_at: Mapped[datetime] = mapped_column(default=utcnow)
