"""Checks of the audit trail and of the audits themselves: the chain verified every day,
and the quarter's security summary."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from ..extensions import db
from . import services
from .check_access import in_period
from .check_models import CheckRun, Finding
from .check_types import EVIDENCE_ROWS, MAX_FINDINGS_PER_CHECK, Context, Draft, Outcome, iso

# A high finding still open this long after it was raised is overdue.
HIGH_OVERDUE_DAYS = 30
SUMMARY_EVENTS = {
    "failed_sign_ins": ("auth.login_failed",),
    "lockouts": ("auth.locked",),
    "role_changes": ("user.role_changed",),
    "deactivations": ("user.deactivated",),
    "sessions_ended_by_admins": ("session.ended", "session.ended_everyone"),
    "security_alerts": ("security.alert",),
}


def chain_verification(ctx: Context) -> Outcome:
    """The whole chain walked as it stands when the run runs (an edit is an edit whenever
    it happened). One object: the chain; its problems are the evidence."""
    result = services.verify()
    details = {"checked": result.checked, "problems": len(result.problems)}
    if result.ok:
        return Outcome(1, [], 0, details)
    problems = [p.as_dict() for p in result.problems[:EVIDENCE_ROWS]]
    draft = Draft(
        "audit-chain",
        f"Audit chain broken: {result.summary()}"[:200],
        problems,
        len(result.problems),
    )
    return Outcome(1, [draft], 1, details)


def security_summary(ctx: Context) -> Outcome:
    """The quarter in figures (the result's details) and, as findings, the high findings
    still waiting for someone HIGH_OVERDUE_DAYS after they were raised."""
    figures = {}
    for name, actions in SUMMARY_EVENTS.items():
        figures[name] = int(
            db.session.scalar(select(func.count()).where(*in_period(ctx, *actions))) or 0
        )
    in_quarter = [Finding.created_at >= ctx.period_start, Finding.created_at < ctx.period_end]
    raised = dict(
        db.session.execute(
            select(Finding.severity, func.count()).where(*in_quarter).group_by(Finding.severity)
        ).all()
    )
    figures["findings_raised"] = {k: int(v) for k, v in raised.items()}
    figures["findings_resolved"] = int(
        db.session.scalar(
            select(func.count())
            .select_from(Finding)
            .join(CheckRun, CheckRun.id == Finding.resolved_run_id)
            .where(CheckRun.started_at >= ctx.period_start, CheckRun.started_at < ctx.period_end)
        )
        or 0
    )
    figures["risks_accepted"] = int(
        db.session.scalar(select(func.count()).where(Finding.state == "accepted")) or 0
    )
    waiting = [
        Finding.severity == "high",
        Finding.state.in_(("new", "open", "acknowledged")),
        Finding.created_at < ctx.as_of,
    ]
    overdue = [*waiting, Finding.created_at < ctx.as_of - timedelta(days=HIGH_OVERDUE_DAYS)]
    total = int(db.session.scalar(select(func.count()).where(*waiting)) or 0)
    failing = int(db.session.scalar(select(func.count()).where(*overdue)) or 0)
    rows = db.session.execute(
        select(
            Finding.id,
            Finding.title,
            Finding.check_key,
            Finding.state,
            Finding.created_at,
            Finding.ticket_id,
        )
        .where(*overdue)
        .order_by(Finding.id)
        .limit(MAX_FINDINGS_PER_CHECK)
    ).all()
    drafts = [
        Draft(
            f"finding:{r.id}",
            f"High finding F-{r.id:06d} open for over {HIGH_OVERDUE_DAYS} days: {r.title}"[:200],
            [
                {
                    "finding_id": r.id,
                    "check": r.check_key,
                    "state": r.state,
                    "raised": iso(r.created_at),
                    "ticket_id": r.ticket_id,
                }
            ],
        )
        for r in rows
    ]
    return Outcome(total, drafts, failing, figures)
