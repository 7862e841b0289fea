"""Periodic work: one declarative list (DESIGN §4). `flask scheduler` runs it.

With Redis, RQ's cron scheduler enqueues each entry on its queue at its
interval and the workers run it; on the embedded default the scheduler runs
due entries itself, inline.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .audits import block_guard, refusals
from .audits import check_services as scheduled_audits
from .audits import checkpoints as audit_checkpoints
from .audits import review_tasks as access_reviews
from .audits import runs as audit_runs
from .changes import tasks as change_tasks
from .ops import tasks as ops_tasks
from .reports import subscriptions as report_subscriptions
from .reports import tasks as report_tasks
from .retention import run as retention
from .tickets import sweep as ticket_sweep


@dataclass(frozen=True)
class Periodic:
    func: Callable[..., Any]
    every_seconds: int
    timeout_seconds: int
    queue: str = "default"

    @property
    def name(self) -> str:
        return f"{self.func.__module__}.{self.func.__name__}"


PERIODIC: tuple[Periodic, ...] = (
    Periodic(ops_tasks.expire_sessions, every_seconds=15 * 60, timeout_seconds=120),
    Periodic(ops_tasks.purge_spent_links, every_seconds=24 * 3600, timeout_seconds=300),
    # SLA states and warnings (a safety net for the scheduled checks), auto-close, auto-resolve.
    Periodic(ticket_sweep.sweep_job, every_seconds=5 * 60, timeout_seconds=600),
    # Change reminders (a day before the window, at its opening) when their scheduled job
    # was lost or there is no scheduler (the embedded default).
    Periodic(change_tasks.reminder_sweep_job, every_seconds=5 * 60, timeout_seconds=300),
    # Exports: expire old files, fail rows whose worker died, remove partial files.
    Periodic(report_tasks.cleanup_exports, every_seconds=15 * 60, timeout_seconds=600),
    # Scheduled reports: start each period's report once it is over, email those built.
    Periodic(
        report_subscriptions.deliver_scheduled_reports, every_seconds=15 * 60, timeout_seconds=600
    ),
    # The audit chain's head, checkpointed into the database, a file and the security
    # contacts' mail; and the whole chain verified against the checkpoints once a day.
    Periodic(audit_checkpoints.periodic_checkpoint, every_seconds=3600, timeout_seconds=600),
    Periodic(audit_runs.scheduled_verification, every_seconds=24 * 3600, timeout_seconds=4 * 3600),
    # Scheduled audits: each schedule's last ended period, run once (audits/checks.py).
    Periodic(scheduled_audits.run_due_schedules, every_seconds=3600, timeout_seconds=3600),
    # Access reviews: reminders before the due date, escalation at it; and on the 1st of
    # the month that month's campaign (each once, however often they run).
    Periodic(access_reviews.review_sweep, every_seconds=15 * 60, timeout_seconds=600),
    Periodic(access_reviews.monthly_review, every_seconds=3600, timeout_seconds=600),
    # Blocked requests and 429s are counted in Redis; their counts reach the rows here
    # too, not only when the next one arrives.
    Periodic(block_guard.flush_hits, every_seconds=60, timeout_seconds=60),
    Periodic(refusals.flush_rate_limit_hits, every_seconds=60, timeout_seconds=60),
    # Retention: records past their policy archived, the archive proved, then deleted.
    Periodic(retention.retention_job, every_seconds=24 * 3600, timeout_seconds=4 * 3600),
)
