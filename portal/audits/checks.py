"""The scheduled audits: every check, declared once, with its schedule, default severity
and recommendation; and the period each schedule audits.

Periods are whole calendar days, weeks, months and quarters in the portal's TIMEZONE
(the business's day, not the server's), kept as half-open UTC ranges [start, end):

- daily: the previous day;
- weekly: the previous ISO week, Monday to Sunday;
- monthly: the previous calendar month;
- quarterly: the previous calendar quarter (January–March, …).

A run audits the last period that has ended at the moment it runs, so the scheduler can
try every schedule every hour: a schedule is due when the last ended period has no run
yet. "Run twice" means a second run of the same schedule for the same period (the same
`period_start`): the unique (schedule, period_start) row makes it do nothing, whoever
asks (scheduler, command line) and however often. Changing TIMEZONE moves the periods'
boundaries; runs already made keep theirs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from . import check_access, check_accounts, check_trail, check_work
from .check_types import Context, Outcome

SCHEDULES = ("daily", "weekly", "monthly", "quarterly")


@dataclass(frozen=True)
class Check:
    key: str
    title: str
    schedule: str
    severity: str  # low | medium | high, unless a finding says otherwise
    recommendation: str
    function: Callable[[Context], Outcome]
    # What `total` counts, for the page: "accounts", "tickets", …
    objects: str = "objects"


CHECKS: tuple[Check, ...] = (
    # -- daily -----------------------------------------------------------------------------
    Check(
        "failed_sign_ins",
        "Failed sign-in analysis",
        "daily",
        "medium",
        "Ask the account holder whether these were theirs; block the addresses that are "
        "guessing passwords and reset any account that may have been guessed.",
        check_access.failed_sign_ins,
        "accounts and addresses with failed sign-ins",
    ),
    Check(
        "role_changes",
        "Permission and role changes",
        "daily",
        "low",
        "Confirm each change was asked for and approved; revert any that was not.",
        check_access.role_changes,
        "active accounts",
    ),
    Check(
        "new_admins",
        "New admins",
        "daily",
        "high",
        "Confirm with the person who granted it that admin rights were intended and "
        "approved; remove them otherwise.",
        check_access.new_admins,
        "active admins",
    ),
    Check(
        "chain_verification",
        "Audit chain verification",
        "daily",
        "high",
        "Treat the audit trail as tampered with: compare it with the latest checkpoint "
        "and the database backups, and find out who had write access.",
        check_trail.chain_verification,
        "audit chain (the whole of it)",
    ),
    # -- weekly ----------------------------------------------------------------------------
    Check(
        "dormant_accounts",
        "Active accounts without a sign-in for 90 days",
        "weekly",
        "medium",
        "Deactivate accounts nobody uses; an unused account is a door nobody watches.",
        check_accounts.dormant_accounts,
        "active accounts",
    ),
    Check(
        "stale_invitations",
        "Invitations pending for over 7 days",
        "weekly",
        "low",
        "Revoke invitations nobody is waiting for, or resend them to the right address.",
        check_accounts.stale_invitations,
        "unanswered invitations",
    ),
    Check(
        "admin_review",
        "Admin role review",
        "weekly",
        "medium",
        "Take admin rights away from accounts that do not use them; an admin account "
        "marked compromised needs a new password before anything else.",
        check_accounts.admin_review,
        "active admins",
    ),
    Check(
        "long_sessions",
        "Long-lived sessions",
        "weekly",
        "medium",
        "End these sessions and check that the session-expiry job runs.",
        check_accounts.long_sessions,
        "open sessions",
    ),
    # -- monthly ---------------------------------------------------------------------------
    Check(
        "permission_audit",
        "Permission audit: who holds what",
        "monthly",
        "high",
        "Give the account a known role, or end the session of the deactivated account.",
        check_accounts.permission_audit,
        "active accounts",
    ),
    Check(
        "separation_of_duties",
        "Separation of duties: approvals by a change's requester or implementer",
        "monthly",
        "high",
        "Have the change approved again by someone not involved in it, and review what "
        "was carried out under it.",
        check_work.separation_of_duties,
        "approved changes",
    ),
    Check(
        "breached_without_note",
        "Breached tickets without a note",
        "monthly",
        "medium",
        "Add an internal note saying why the SLA was missed and what is done about it.",
        check_work.breached_without_note,
        "breached tickets",
    ),
    Check(
        "incidents_without_review",
        "P0/P1 incidents closed without a review",
        "monthly",
        "high",
        "Write the post-incident review: timeline, root cause and action items.",
        check_work.incidents_without_review,
        "closed P0/P1 incidents",
    ),
    Check(
        "emergency_without_retrospective",
        "Emergency changes without a retrospective",
        "monthly",
        "high",
        "Hold the retrospective and record its findings on the change.",
        check_work.emergency_without_retrospective,
        "emergency changes carried out",
    ),
    # -- quarterly -------------------------------------------------------------------------
    Check(
        "security_summary",
        "Quarterly security summary",
        "quarterly",
        "medium",
        "Remediate the high finding, or accept its risk with a reason and an expiry.",
        check_trail.security_summary,
        "high findings raised",
    ),
)
BY_KEY = {check.key: check for check in CHECKS}


def checks_for(schedule: str) -> list[Check]:
    return [check for check in CHECKS if check.schedule == schedule]


def _period_days(schedule: str, today: date) -> tuple[date, date]:
    """The first day of the last ended period and the first day after it."""
    if schedule == "daily":
        return today - timedelta(days=1), today
    if schedule == "weekly":
        this_monday = today - timedelta(days=today.weekday())
        return this_monday - timedelta(days=7), this_monday
    if schedule == "monthly":
        this_month = today.replace(day=1)
        return (this_month - timedelta(days=1)).replace(day=1), this_month
    if schedule == "quarterly":
        this_quarter = date(today.year, 3 * ((today.month - 1) // 3) + 1, 1)
        last_day = this_quarter - timedelta(days=1)
        return date(last_day.year, 3 * ((last_day.month - 1) // 3) + 1, 1), this_quarter
    raise ValueError(f"unknown schedule {schedule!r}")


def period_for(schedule: str, now: datetime, zone: str) -> tuple[datetime, datetime]:
    """The last period of `schedule` ended at `now` (naive UTC), as naive UTC [start, end)."""
    tz = ZoneInfo(zone)
    today = now.replace(tzinfo=UTC).astimezone(tz).date()
    first, after = _period_days(schedule, today)

    def utc_midnight(day: date) -> datetime:
        return datetime.combine(day, time(), tzinfo=tz).astimezone(UTC).replace(tzinfo=None)

    return utc_midnight(first), utc_midnight(after)
