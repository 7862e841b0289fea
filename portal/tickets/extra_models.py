"""Rows that hang off a ticket: attachments, the post-incident review and its
action items, and the list views people save."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from ..timeutil import utcnow
from ..users.models import User


class TicketAttachment(db.Model):
    __tablename__ = "ticket_attachments"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    reply_id: Mapped[int | None] = mapped_column(ForeignKey("ticket_replies.id"))
    uploaded_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    # The name shown and offered on download, sanitised; never used as a path.
    filename: Mapped[str] = mapped_column(String(255))
    # The name portal/storage.py generated for the stored file.
    storage_key: Mapped[str] = mapped_column(String(100), unique=True)
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int]
    sha256: Mapped[str] = mapped_column(String(64))
    # Attached to an internal note: hidden from requesters like the note itself.
    is_internal: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    uploaded_by: Mapped[User] = relationship(lazy="joined")

    __table_args__ = (Index("ix_ticket_attachments_ticket_id", "ticket_id"),)


class IncidentReview(db.Model):
    """The post-incident review a P0/P1 incident needs before it can close."""

    __tablename__ = "incident_reviews"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(
        ForeignKey("tickets.id", ondelete="CASCADE"), unique=True
    )
    timeline: Mapped[str] = mapped_column(Text, default="")
    root_cause: Mapped[str] = mapped_column(Text, default="")
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    author: Mapped[User] = relationship(lazy="joined")
    action_items: Mapped[list[ActionItem]] = relationship(
        back_populates="review", order_by="ActionItem.id", cascade="all, delete-orphan"
    )


class ActionItem(db.Model):
    __tablename__ = "incident_action_items"

    id: Mapped[int] = mapped_column(primary_key=True)
    review_id: Mapped[int] = mapped_column(
        ForeignKey("incident_reviews.id", ondelete="CASCADE"), index=True
    )
    description: Mapped[str] = mapped_column(String(500))
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    due_on: Mapped[date]
    # Set when the item was turned into a ticket of its own.
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))
    done_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    review: Mapped[IncidentReview] = relationship(back_populates="action_items")
    owner: Mapped[User] = relationship(lazy="joined")


class SavedView(db.Model):
    """A named ticket-list query string, kept per user."""

    __tablename__ = "saved_views"
    __table_args__ = (UniqueConstraint("user_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(80))
    query: Mapped[str] = mapped_column(String(1000))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
