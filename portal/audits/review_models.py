"""Access reviews: a campaign, the roster it froze (one item per person) and the
reminders it sent. The rules live in reviews.py; a row here only knows its own state."""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from ..timeutil import utcnow

if TYPE_CHECKING:
    from ..tickets.setup_models import Team
    from ..users.models import User

SCOPES = {"all": "All active users", "admins": "Admins only", "team": "One team"}
REVIEWER_RULES = {"admins": "Admins", "team_leads": "Each team's lead for their team"}
DECISIONS = {"keep": "Keep", "change_role": "Change role", "deactivate": "Deactivate"}
STATUSES = ("open", "completed", "cancelled")


class AccessReview(db.Model):
    """One campaign. The roster hash is fixed when it starts; the chain head and the
    evidence files when it completes."""

    __tablename__ = "access_reviews"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    scope: Mapped[str] = mapped_column(String(10))  # a key of SCOPES
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"))
    reviewer_rule: Mapped[str] = mapped_column(String(12))  # a key of REVIEWER_RULES
    due_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(10), default="open", index=True)
    # The month ("2026-11") of a campaign the scheduler started: unique, so a second run
    # of the monthly job finds it instead of starting another.
    period: Mapped[str | None] = mapped_column(String(7), unique=True)
    roster_hash: Mapped[str] = mapped_column(String(64))
    roster_count: Mapped[int]
    started_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    started_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    escalated_at: Mapped[datetime | None]
    completed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    completed_at: Mapped[datetime | None]
    # The audit chain's newest event when the campaign completed: the evidence names it.
    chain_head_id: Mapped[int | None]
    chain_head_hash: Mapped[str | None] = mapped_column(String(64))
    evidence_pdf_key: Mapped[str | None] = mapped_column(String(80))
    evidence_csv_key: Mapped[str | None] = mapped_column(String(80))

    team: Mapped[Team | None] = relationship("Team")
    started_by: Mapped[User | None] = relationship("User", foreign_keys=[started_by_id])
    completed_by: Mapped[User | None] = relationship("User", foreign_keys=[completed_by_id])

    @property
    def is_open(self) -> bool:
        return self.status == "open"

    @property
    def scope_label(self) -> str:
        label = SCOPES.get(self.scope, self.scope)
        return f"{label}: {self.team.name}" if self.scope == "team" and self.team else label

    @property
    def reviewer_label(self) -> str:
        return REVIEWER_RULES.get(self.reviewer_rule, self.reviewer_rule)

    @property
    def is_overdue(self) -> bool:
        return self.is_open and self.due_at <= utcnow()


class AccessReviewItem(db.Model):
    """One person of the frozen roster: what they had at the freeze, who must decide,
    the decision and what carrying it out changed."""

    __tablename__ = "access_review_items"

    id: Mapped[int] = mapped_column(primary_key=True)
    review_id: Mapped[int] = mapped_column(ForeignKey("access_reviews.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    # At the freeze: {"email", "name", "role", "status", "team", "last_login_at"}.
    snapshot: Mapped[dict[str, Any]] = mapped_column(JSON)
    # Who must decide; None: any admin (the rule "admins", or escalated at the due date).
    reviewer_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decision: Mapped[str | None] = mapped_column(String(12))  # a key of DECISIONS
    new_role: Mapped[str | None] = mapped_column(String(20))
    comment: Mapped[str | None] = mapped_column(Text)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[datetime | None]
    applied_at: Mapped[datetime | None]
    # What carrying the decision out changed ("role agent → requester"), or why it was
    # refused ("Not carried out: this is the last active admin.").
    outcome: Mapped[str | None] = mapped_column(String(300))

    person: Mapped[User] = relationship("User", foreign_keys=[user_id], lazy="joined")
    reviewer: Mapped[User | None] = relationship("User", foreign_keys=[reviewer_id])
    decided_by: Mapped[User | None] = relationship("User", foreign_keys=[decided_by_id])

    __table_args__ = (
        UniqueConstraint("review_id", "user_id", name="uq_access_review_items_review_user"),
        # "Reviews waiting for me": a reviewer's items, by campaign.
        Index("ix_access_review_items_reviewer", "reviewer_id", "review_id"),
    )

    @property
    def is_decided(self) -> bool:
        return self.decision is not None

    @property
    def is_settled(self) -> bool:
        """Decided and carried out: nothing left to do for this person."""
        return self.applied_at is not None

    @property
    def decision_label(self) -> str:
        if self.decision == "change_role":
            return f"Change role to {self.new_role}"
        return DECISIONS.get(self.decision or "", "Undecided")


class AccessReviewReminder(db.Model):
    """One reminder sent: at most one per campaign, reviewer and day, whoever runs."""

    __tablename__ = "access_review_reminders"

    id: Mapped[int] = mapped_column(primary_key=True)
    review_id: Mapped[int] = mapped_column(ForeignKey("access_reviews.id", ondelete="CASCADE"))
    reviewer_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    day: Mapped[date]
    sent_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        UniqueConstraint(
            "review_id", "reviewer_id", "day", name="uq_access_review_reminders_once_a_day"
        ),
    )
