"""The help desk's admin-managed setup: teams, categories, routing rules, SLA policies
and the calendars they count time in."""

from __future__ import annotations

from datetime import date, datetime, time

from sqlalchemy import Column, ForeignKey, String, Table, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from ..timeutil import utcnow
from ..users.models import User

PRIORITIES = ("critical", "high", "medium", "low")
LEVELS = ("L1", "L2", "L3")

team_members = Table(
    "team_members",
    db.metadata,
    Column("team_id", ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
)


class Team(db.Model):
    __tablename__ = "teams"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    lead_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # The team that takes tickets escalated to this support level (at most one per level).
    escalation_level: Mapped[str | None] = mapped_column(String(2), unique=True)
    is_default: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    lead: Mapped[User | None] = relationship(foreign_keys=[lead_id])
    members: Mapped[list[User]] = relationship(secondary=team_members, order_by=User.name)


class Category(db.Model):
    __tablename__ = "categories"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"))

    team: Mapped[Team | None] = relationship()


class RoutingRule(db.Model):
    """Ordered: the first active rule whose words or pattern match the subject or
    description classifies and routes a new ticket."""

    __tablename__ = "routing_rules"

    id: Mapped[int] = mapped_column(primary_key=True)
    position: Mapped[int] = mapped_column(index=True)
    name: Mapped[str] = mapped_column(String(80))
    # Space-separated words (any one matches, case-insensitive, whole words) or a regex.
    match: Mapped[str] = mapped_column(String(500))
    is_regex: Mapped[bool] = mapped_column(default=False)
    category_id: Mapped[int | None] = mapped_column(ForeignKey("categories.id"))
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id"))
    priority: Mapped[str | None] = mapped_column(String(10))
    is_active: Mapped[bool] = mapped_column(default=True)

    category: Mapped[Category | None] = relationship()
    team: Mapped[Team] = relationship()


class SlaCalendar(db.Model):
    __tablename__ = "sla_calendars"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    kind: Mapped[str] = mapped_column(String(10), default="24x7")  # 24x7 | business
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    # Monday=0; stored as "0,1,2,3,4".
    weekdays: Mapped[str] = mapped_column(String(20), default="0,1,2,3,4")
    day_start: Mapped[time] = mapped_column(default=time(9, 0))
    day_end: Mapped[time] = mapped_column(default=time(17, 0))

    holidays: Mapped[list[Holiday]] = relationship(
        back_populates="calendar", order_by="Holiday.day", cascade="all, delete-orphan"
    )


class Holiday(db.Model):
    __tablename__ = "holidays"
    __table_args__ = (UniqueConstraint("calendar_id", "day"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    calendar_id: Mapped[int] = mapped_column(ForeignKey("sla_calendars.id", ondelete="CASCADE"))
    day: Mapped[date]
    name: Mapped[str] = mapped_column(String(80))

    calendar: Mapped[SlaCalendar] = relationship(back_populates="holidays")


class SlaPolicy(db.Model):
    """Response and resolution targets for one priority."""

    __tablename__ = "sla_policies"

    id: Mapped[int] = mapped_column(primary_key=True)
    priority: Mapped[str] = mapped_column(String(10), unique=True)
    response_minutes: Mapped[int]
    resolution_minutes: Mapped[int]
    calendar_id: Mapped[int] = mapped_column(ForeignKey("sla_calendars.id"))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    calendar: Mapped[SlaCalendar] = relationship(lazy="joined")
