"""What admins set up for change management: the services changes affect, the freeze
periods nothing routine may be scheduled in, and the pre-approved standard templates."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, ForeignKey, Index, String, Table, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from ..timeutil import utcnow
from ..users.models import User

template_services = Table(
    "standard_template_services",
    db.metadata,
    Column(
        "template_id", ForeignKey("standard_templates.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("service_id", ForeignKey("services.id", ondelete="CASCADE"), primary_key=True),
)


class Service(db.Model):
    """A service a change can affect; its owner hears about every change scheduled on it."""

    __tablename__ = "services"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    # Retired services stay on the changes that named them; new changes cannot pick them.
    is_active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    owner: Mapped[User] = relationship(lazy="joined")


class FreezePeriod(db.Model):
    """[starts_at, ends_at) in UTC: normal and standard changes cannot be scheduled in it."""

    __tablename__ = "freeze_periods"

    id: Mapped[int] = mapped_column(primary_key=True)
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    reason: Mapped[str] = mapped_column(String(500))
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    created_by: Mapped[User] = relationship(lazy="joined")

    __table_args__ = (Index("ix_freeze_periods_window", "starts_at", "ends_at"),)


class StandardTemplate(db.Model):
    """A routine change approved once, in advance: a change made from an active template
    goes from submitted straight to approved."""

    __tablename__ = "standard_templates"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    implementation_plan: Mapped[str] = mapped_column(Text, default="")
    rollback_plan: Mapped[str] = mapped_column(Text, default="")
    impact: Mapped[int] = mapped_column(default=1)
    likelihood: Mapped[int] = mapped_column(default=1)
    is_active: Mapped[bool] = mapped_column(default=True)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    created_by: Mapped[User] = relationship()
    services: Mapped[list[Service]] = relationship(
        secondary=template_services, order_by=Service.name
    )
