"""Scheduled audits' own rows: a run per schedule and period, each check's result in it,
and the findings the checks raise, tracked from the run that first saw them until a run
sees them pass.

A finding is one episode of one subject failing one check: `(check_key, subject_key)`
names it ("dormant_accounts", "user:42"), so the next run of the schedule can tell a
finding it sees again from a new one. While an episode lasts (`resolved_run_id` is
NULL) there is one row per name — the partial unique index says so — and every run that
sees it moves `last_seen_run_id` on; the first run that does not see it closes it.
A run R saw a finding when `first_seen_run_id <= R <= last_seen_run_id` (runs of one
schedule follow each other, and a finding's check belongs to one schedule).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from ..timeutil import utcnow
from ..users.models import User

SEVERITIES = ("low", "medium", "high")
SEVERITY_RANK = {"low": 0, "medium": 1, "high": 2}
# new: raised by its first run; open: seen again; acknowledged: someone is on it;
# accepted: a risk someone took, until `accepted_until`; resolved: a run saw it pass.
STATES = ("new", "open", "acknowledged", "accepted", "resolved")
ACTIONABLE = ("new", "open")
STATE_LABELS = {
    "new": "New",
    "open": "Open",
    "acknowledged": "Acknowledged",
    "accepted": "Risk accepted",
    "resolved": "Resolved",
}


class CheckRun(db.Model):
    """One run of one schedule's checks over one period. Unique per (schedule,
    period_start): a second run for the same period finds the row and does nothing."""

    __tablename__ = "audit_check_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    schedule: Mapped[str] = mapped_column(String(10))  # daily|weekly|monthly|quarterly
    # The period audited, [start, end) in naive UTC (see checks.period_for).
    period_start: Mapped[datetime]
    period_end: Mapped[datetime]
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(10), default="running")  # running|done|failed
    # {"checks": 4, "failing_checks": 1, "errors": 0, "new": 2, "open": 1, "resolved": 3,
    #  "reopened": 0, "high_new": 1, "notified": 2}
    summary: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Who asked: None for the scheduler; the command line names no one either.
    requested_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    requested_by: Mapped[User | None] = relationship(lazy="joined")
    results: Mapped[list[CheckResult]] = relationship(
        back_populates="run", order_by="CheckResult.id", cascade="all, delete-orphan"
    )

    __table_args__ = (
        UniqueConstraint("schedule", "period_start", name="uq_audit_check_runs_period"),
        Index("ix_audit_check_runs_period_start", "period_start", "id"),
    )

    @property
    def number(self) -> str:
        return f"AR-{self.id:05d}"


class CheckResult(db.Model):
    """What one check found in one run: how many objects it looked at and how many
    passed; `complete` is False when it tracked only the first failing ones."""

    __tablename__ = "audit_check_results"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("audit_check_runs.id", ondelete="CASCADE"))
    check_key: Mapped[str] = mapped_column(String(60))
    status: Mapped[str] = mapped_column(String(10))  # passed | failed | error
    total: Mapped[int] = mapped_column(default=0)
    passed: Mapped[int] = mapped_column(default=0)
    failing: Mapped[int] = mapped_column(default=0)
    complete: Mapped[bool] = mapped_column(default=True)
    # Figures a check reports beside its findings (who holds which role, a summary).
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    error: Mapped[str | None] = mapped_column(Text)

    run: Mapped[CheckRun] = relationship(back_populates="results")

    __table_args__ = (UniqueConstraint("run_id", "check_key", name="uq_audit_check_results_check"),)

    @property
    def percent_passing(self) -> int | None:
        """The share of objects passing, rounded down (None when there was nothing)."""
        if self.total <= 0:
            return None
        return self.passed * 100 // self.total


class Finding(db.Model):
    __tablename__ = "audit_findings"

    id: Mapped[int] = mapped_column(primary_key=True)
    schedule: Mapped[str] = mapped_column(String(10))
    check_key: Mapped[str] = mapped_column(String(60))
    # A stable name of what failed: user:42, ticket:7, change:3, ip:10.0.0.1, audit-chain.
    subject_key: Mapped[str] = mapped_column(String(120))
    severity: Mapped[str] = mapped_column(String(6))
    title: Mapped[str] = mapped_column(String(200))
    # {"rows": [{...}, ...] (the first EVIDENCE_ROWS), "total": n}: as the last run saw it.
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    recommendation: Mapped[str] = mapped_column(Text, default="")
    state: Mapped[str] = mapped_column(String(12), default="new")
    first_seen_run_id: Mapped[int] = mapped_column(ForeignKey("audit_check_runs.id"))
    last_seen_run_id: Mapped[int] = mapped_column(ForeignKey("audit_check_runs.id"))
    resolved_run_id: Mapped[int | None] = mapped_column(ForeignKey("audit_check_runs.id"))
    acknowledged_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    acknowledged_at: Mapped[datetime | None]
    accepted_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    accepted_at: Mapped[datetime | None]
    accepted_reason: Mapped[str | None] = mapped_column(Text)
    # The acceptance holds until then; the first run after it opens the finding again.
    accepted_until: Mapped[datetime | None]
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    first_seen_run: Mapped[CheckRun] = relationship(foreign_keys=[first_seen_run_id])
    acknowledged_by: Mapped[User | None] = relationship(
        foreign_keys=[acknowledged_by_id], lazy="joined"
    )
    accepted_by: Mapped[User | None] = relationship(foreign_keys=[accepted_by_id], lazy="joined")

    __table_args__ = (
        # One open episode per check and subject: what the next run matches against.
        Index(
            "uq_audit_findings_open_subject",
            "check_key",
            "subject_key",
            unique=True,
            sqlite_where=resolved_run_id.is_(None),
            postgresql_where=resolved_run_id.is_(None),
        ),
        Index("ix_audit_findings_last_seen", "last_seen_run_id", "check_key"),
        Index("ix_audit_findings_resolved_run", "resolved_run_id"),
        Index("ix_audit_findings_state_severity", "state", "severity"),
    )

    @property
    def number(self) -> str:
        return f"F-{self.id:06d}"

    @property
    def state_label(self) -> str:
        return STATE_LABELS.get(self.state, self.state)

    @property
    def is_open(self) -> bool:
        return self.resolved_run_id is None

    def compared_with(self, run_id: int) -> str:
        """How run `run_id` saw this finding: new, still open or resolved."""
        if self.resolved_run_id == run_id:
            return "resolved"
        if self.first_seen_run_id == run_id:
            return "new"
        return "still open"
