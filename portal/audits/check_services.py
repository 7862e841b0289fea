"""Running the scheduled audits and acting on their findings.

`run_schedule` runs one schedule's checks for its last ended period (checks.py says which)
in one transaction: the run's row, each check's result, the findings it opens, sees again
or closes, the `audit.run_completed` event and the emails about high findings commit
together or not at all. The run's row is unique per (schedule, period_start) and is
inserted first with ON CONFLICT DO NOTHING, so a second run of the same period — a
scheduler that fires twice, a command typed twice, two processes at once — finds it and
does nothing (PostgreSQL makes the second wait for the first to commit). A process that
dies mid-run leaves nothing behind, and the next attempt runs the period in full. On
SQLite the run takes the database's one write lock first (writers wait for the run; the
embedded default's runs take well under a second). A period earlier than one already
audited is refused: findings are matched run after run, in order.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy import false, select, update
from sqlalchemy.dialects import postgresql, sqlite

from .. import jobs, mail
from ..errors import Conflict, Forbidden, ServiceError
from ..extensions import db
from ..security import Permission, Role, role_has
from ..timeutil import utcnow
from ..users.models import User
from .check_models import ACTIONABLE, CheckResult, CheckRun, Finding
from .check_types import Context, Outcome
from .checks import SCHEDULES, Check, checks_for, period_for
from .services import record

log = logging.getLogger(__name__)

# The high findings an email lists (the run's page has them all).
EMAIL_FINDINGS = 20
MIN_REASON = 10
MAX_ACCEPT_DAYS = 366
TICKET_PRIORITY = {"high": "high", "medium": "medium", "low": "low"}


def _settings() -> Any:
    return current_app.config["SETTINGS"]


# -- running ------------------------------------------------------------------------------


def _insert_once(
    schedule: str, start: datetime, end: datetime, requested_by: User | None
) -> int | None:
    dialect = db.session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = (
        insert(CheckRun)
        .values(
            schedule=schedule,
            period_start=start,
            period_end=end,
            started_at=utcnow(),
            status="running",
            summary={},
            requested_by_id=requested_by.id if requested_by else None,
        )
        .on_conflict_do_nothing(index_elements=["schedule", "period_start"])
        .returning(CheckRun.id)
    )
    return db.session.execute(statement).scalar()


def _take_write_lock_on_sqlite() -> None:
    """SQLite: take its one write lock before reading, waiting for it up to busy_timeout,
    so that two runs of one period queue up instead of one failing to upgrade its read
    (PostgreSQL: the unique insert alone serialises them, and only them)."""
    if db.session.get_bind().dialect.name == "sqlite":
        db.session.execute(update(CheckRun).where(false()).values(id=CheckRun.id))


def run_schedule(
    schedule: str, now: datetime | None = None, requested_by: User | None = None
) -> tuple[CheckRun, bool]:
    """Run `schedule` for the last period ended at `now` (naive UTC, default: now).
    Returns the run and whether this call made it (False: the period had its run)."""
    if schedule not in SCHEDULES:
        raise ServiceError(f"Choose one of: {', '.join(SCHEDULES)}.", field="schedule")
    now = now or utcnow()
    _take_write_lock_on_sqlite()
    start, end = period_for(schedule, now, _settings().TIMEZONE)
    later = db.session.scalar(
        select(CheckRun.id).where(CheckRun.schedule == schedule, CheckRun.period_start > start)
    )
    run_id = None if later else _insert_once(schedule, start, end, requested_by)
    if run_id is None:
        existing = db.session.scalar(
            select(CheckRun).where(CheckRun.schedule == schedule, CheckRun.period_start == start)
        )
        jobs.commit()  # nothing written: ends the transaction (and SQLite's write lock)
        if existing is None:
            raise Conflict(f"A later {schedule} period has been audited already.")
        return existing, False
    run = db.session.get_one(CheckRun, run_id)
    context = Context(schedule, start, end)
    tally: Counter[str] = Counter()
    alarming: list[Finding] = []
    for check in checks_for(schedule):
        _run_check(run, check, context, now, tally, alarming)
    run.status = "failed" if tally["errors"] else "done"
    run.finished_at = utcnow()
    notified = _notify(run, alarming)
    # One new dict (a JSON column does not see changes made inside the old one).
    run.summary = {
        "checks": len(checks_for(schedule)),
        **{
            k: tally[k] for k in ("failing_checks", "errors", "new", "open", "resolved", "reopened")
        },
        "high_new": len(alarming),
        "notified": notified,
    }
    record(
        "audit.run_completed",
        requested_by,
        ("audit_check_run", run.id),
        schedule=schedule,
        period_start=start,
        period_end=end,
        status=run.status,
        **run.summary,
    )
    jobs.commit()
    return run, True


def _run_check(
    run: CheckRun,
    check: Check,
    context: Context,
    now: datetime,
    tally: Counter[str],
    alarming: list[Finding],
) -> None:
    """One check: its result row, then its findings matched against the open ones. A
    check that fails is recorded as an error and leaves its findings as they were."""
    try:
        with db.session.begin_nested():
            outcome: Outcome = check.function(context)
    except Exception as exc:
        log.exception("audit check %s failed in run %s", check.key, run.id)
        tally["errors"] += 1
        db.session.add(
            CheckResult(
                run_id=run.id,
                check_key=check.key,
                status="error",
                details={},
                error=f"{type(exc).__name__}: {exc}"[:4000],
            )
        )
        return
    if outcome.failing:
        tally["failing_checks"] += 1
    db.session.add(
        CheckResult(
            run_id=run.id,
            check_key=check.key,
            status="failed" if outcome.failing else "passed",
            total=outcome.total,
            passed=outcome.passed,
            failing=outcome.failing,
            complete=outcome.complete,
            details=outcome.details,
        )
    )
    still_open = {
        f.subject_key: f
        for f in db.session.scalars(
            select(Finding).where(Finding.check_key == check.key, Finding.resolved_run_id.is_(None))
        )
    }
    for draft in outcome.drafts:
        severity = draft.severity or check.severity
        finding = still_open.pop(draft.subject_key, None)
        if finding is None:
            finding = Finding(
                schedule=run.schedule,
                check_key=check.key,
                subject_key=draft.subject_key[:120],
                state="new",
                first_seen_run_id=run.id,
            )
            db.session.add(finding)
            tally["new"] += 1
            if severity == "high":
                alarming.append(finding)
        else:
            tally["open"] += 1
            if finding.state == "new":
                finding.state = "open"
            elif finding.state == "accepted" and (finding.accepted_until or now) <= now:
                # The accepted risk has expired: the finding comes back.
                finding.state = "open"
                tally["reopened"] += 1
                if severity == "high":
                    alarming.append(finding)
        finding.last_seen_run_id = run.id
        finding.severity, finding.title = severity, draft.title[:200]
        finding.evidence, finding.recommendation = draft.evidence, check.recommendation
    if outcome.complete:
        for finding in still_open.values():  # the run saw these pass
            finding.state, finding.resolved_run_id = "resolved", run.id
            tally["resolved"] += 1
    db.session.flush()


def _recipients() -> list[str]:
    return list(
        db.session.scalars(
            select(User.email)
            .where(User.is_active.is_(True), User.role.in_((Role.AUDITOR, Role.ADMIN)))
            .order_by(User.id)
        )
    )


def _notify(run: CheckRun, alarming: list[Finding]) -> int:
    """One email per active auditor and admin listing the run's new high findings."""
    if not alarming:
        return 0
    from ..web import external_url

    db.session.flush()
    day = run.period_start.date().isoformat()
    subject = (
        f"[Ops Portal audit] {len(alarming)} high finding(s) in the {run.schedule} audit of {day}"
    )
    lines = [f"The {run.schedule} audit {run.number} raised {len(alarming)} high finding(s):", ""]
    lines += [f"- {f.number}: {f.title}" for f in alarming[:EMAIL_FINDINGS]]
    if len(alarming) > EMAIL_FINDINGS:
        lines.append(f"- and {len(alarming) - EMAIL_FINDINGS} more")
    lines += ["", "Review them:", external_url("audits.check_run_detail", check_run_id=run.id)]
    body = "\n".join(lines) + "\n"
    recipients = _recipients()
    for address in recipients:
        mail.send(address, subject, body)
    return len(recipients)


@jobs.job
def run_due_schedules() -> str:
    """The periodic entry: run every schedule whose last ended period has no run yet.
    Cheap when nothing is due (one indexed lookup per schedule). A run with a failed
    check is committed first, then reported as this job's failure."""
    made, failed = [], []
    for schedule in SCHEDULES:
        run, created = run_schedule(schedule)
        if created:
            made.append(f"{schedule} {run.number}")
            if run.status == "failed":
                failed.append(run.number)
    if failed:
        raise RuntimeError(f"audit runs with failed checks: {', '.join(failed)}")
    return f"ran {', '.join(made)}" if made else "nothing due"


# -- acting on a finding -------------------------------------------------------------------


def _target(finding: Finding) -> tuple[str, int]:
    return ("audit_finding", finding.id)


def _about(finding: Finding) -> dict[str, Any]:
    return {
        "check": finding.check_key,
        "subject": finding.subject_key,
        "severity": finding.severity,
    }


def _mark_acknowledged(finding: Finding, actor: User) -> None:
    finding.state = "acknowledged"
    finding.acknowledged_by_id, finding.acknowledged_at = actor.id, utcnow()


def acknowledge(finding: Finding, actor: User) -> None:
    """Someone has seen it and is on it; it stays listed until a run sees it pass."""
    if finding.state not in ACTIONABLE:
        raise Conflict(
            f"This finding is {finding.state_label.lower()}; there is nothing to acknowledge."
        )
    before = finding.state
    _mark_acknowledged(finding, actor)
    record(
        "finding.acknowledged",
        actor,
        _target(finding),
        before={"state": before},
        after={"state": "acknowledged"},
        **_about(finding),
    )
    jobs.commit()


def accept_until(day: date, zone: str) -> datetime:
    """The end of `day` in `zone`, as naive UTC: an acceptance holds through that day."""
    end = datetime.combine(day + timedelta(days=1), time(), tzinfo=ZoneInfo(zone))
    return end.astimezone(UTC).replace(tzinfo=None)


def accept_risk(finding: Finding, actor: User, reason: str, until: date | None) -> None:
    """Accept the risk until the end of `until` (the actor's day); the first run after
    that which still sees the finding opens it again."""
    if finding.state not in (*ACTIONABLE, "acknowledged"):
        raise Conflict(
            f"This finding is {finding.state_label.lower()}; its risk cannot be accepted."
        )
    reason = (reason or "").strip()
    if len(reason) < MIN_REASON:
        raise ServiceError(
            f"Say why the risk is acceptable (at least {MIN_REASON} characters).", field="reason"
        )
    zone = actor.timezone or _settings().TIMEZONE
    if until is None:
        raise ServiceError("Give the day the acceptance ends.", field="until")
    ends = accept_until(until, zone)
    now = utcnow()
    if ends <= now:
        raise ServiceError("The acceptance must end after today.", field="until")
    if ends > now + timedelta(days=MAX_ACCEPT_DAYS):
        raise ServiceError(
            "An acceptance lasts a year at most; review it again then.", field="until"
        )
    before = finding.state
    finding.state = "accepted"
    finding.accepted_by_id, finding.accepted_at = actor.id, now
    finding.accepted_reason, finding.accepted_until = reason[:2000], ends
    record(
        "finding.accepted",
        actor,
        _target(finding),
        before={"state": before},
        after={"state": "accepted", "until": ends, "reason": reason[:2000]},
        **_about(finding),
    )
    jobs.commit()


def to_ticket(finding: Finding, actor: User) -> Any:
    """File the finding as a ticket (the actor is its requester) and link the two; the
    finding counts as acknowledged. Needs tickets:create as well as the audit pages:
    admins, not auditors (whose role reads tickets but files none)."""
    from ..tickets import services as ticket_services
    from ..web import external_url

    if not role_has(actor.role, Permission.TICKETS_CREATE):
        raise Forbidden("Filing tickets is not part of your role; ask an admin.")
    if finding.ticket_id is not None:
        raise Conflict(f"This finding is already ticket T-{finding.ticket_id:06d}.")
    if finding.state == "resolved":
        raise Conflict("This finding is resolved; there is nothing left to fix.")
    link = external_url("audits.finding_detail", finding_id=finding.id)
    description = (
        f"Audit finding [{finding.number}]({link}) ({finding.severity}): {finding.title}\n\n"
        f"Recommendation: {finding.recommendation}\n\nSubject: {finding.subject_key}"
    )
    # create_ticket commits (and acknowledges by email) on its own; the link is a second step.
    ticket = ticket_services.create_ticket(
        requester=actor,
        subject=f"[{finding.number}] {finding.title}"[:200],
        description=description,
        priority=TICKET_PRIORITY.get(finding.severity, "medium"),
    )
    linked = db.session.execute(
        update(Finding)
        .where(Finding.id == finding.id, Finding.ticket_id.is_(None))
        .values(ticket_id=ticket.id)
        .execution_options(synchronize_session=False)
    )
    if linked.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict(
            f"Someone filed a ticket for this finding at the same moment; {ticket.number} "
            "was filed as well and can be closed."
        )
    db.session.refresh(finding)
    before = finding.state
    if finding.state in ACTIONABLE:
        _mark_acknowledged(finding, actor)
    record(
        "finding.ticketed",
        actor,
        _target(finding),
        ticket_id=ticket.id,
        ticket=ticket.number,
        before={"state": before},
        after={"state": finding.state},
        **_about(finding),
    )
    jobs.commit()
    return ticket
