"""Reminder jobs: the service owners a day before a change's window, the implementer when
it opens.

Scheduling a change asks RQ's scheduler to run `remind` at those two moments (after the
commit). The periodic `reminder_sweep_job` is the safety net for a lost schedule and the
only way reminders go out when jobs run inline (there is no scheduler then). Both go
through `send_reminder`, which sends each reminder once per change, kind and window,
whoever gets there first (a unique row per reminder).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from .. import jobs
from ..extensions import db
from ..timeutil import iso_utc, utcnow
from . import notify
from .models import ChangeReminder, ChangeRequest

DAY_BEFORE = "day_before"
WINDOW_OPEN = "window_open"
KINDS = (DAY_BEFORE, WINDOW_OPEN)
LEAD = timedelta(days=1)
_ISO = "%Y-%m-%dT%H:%M:%S.%fZ"


def _claim(change: ChangeRequest, kind: str) -> bool:
    """Record the reminder; False when it was already sent (now or by a concurrent run)."""
    try:
        with db.session.begin_nested():
            db.session.add(
                ChangeReminder(change_id=change.id, kind=kind, window_start=change.window_start)
            )
    except IntegrityError:
        return False
    return True


def send_reminder(change: ChangeRequest, kind: str) -> bool:
    """Send one reminder for the change's current window, unless it went already. Commits."""
    if kind not in KINDS:
        raise ValueError(f"unknown reminder {kind!r}")
    if not _claim(change, kind):
        return False
    if kind == DAY_BEFORE:
        notify.day_before(change)
    else:
        notify.window_open(change)
    jobs.commit()
    return True


@jobs.job
def remind(change_id: int, kind: str, window_start: str) -> str:
    """Scheduled for one window; harmless if the change moved on or was rescheduled since
    (it then does nothing: the new window has reminders of its own)."""
    change = db.session.get(ChangeRequest, change_id)
    if change is None or change.status != "scheduled" or change.window_start is None:
        return "skipped"
    if change.window_start != datetime.strptime(window_start, _ISO):
        return "skipped"
    return "sent" if send_reminder(change, kind) else "already sent"


def plan_reminders(change: ChangeRequest) -> None:
    """After the commit, have RQ's scheduler remind people about the change's window.
    A day-before moment already past is skipped (the scheduling email said it all); a
    window already open is announced at once."""
    start = change.window_start
    if start is None:
        return
    now = utcnow()
    stamp = iso_utc(start)
    if start - LEAD > now:
        jobs.after_commit(remind, change.id, DAY_BEFORE, stamp, at=start - LEAD)
    if start > now:
        jobs.after_commit(remind, change.id, WINDOW_OPEN, stamp, at=start)
    else:
        jobs.after_commit(remind, change.id, WINDOW_OPEN, stamp)


def remind_due(now: datetime | None = None) -> int:
    """Send the reminders that are due and not yet sent; returns how many went out."""
    now = now or utcnow()
    sent = 0
    upcoming = db.session.scalars(
        select(ChangeRequest).where(
            ChangeRequest.status == "scheduled",
            ChangeRequest.window_start > now,
            ChangeRequest.window_start <= now + LEAD,
        )
    ).all()
    for change in upcoming:
        # Scheduled less than a day ahead: the scheduling email was the notice.
        assert change.window_start is not None
        if change.scheduled_at is not None and change.scheduled_at > change.window_start - LEAD:
            continue
        sent += send_reminder(change, DAY_BEFORE)
    opened = db.session.scalars(
        select(ChangeRequest).where(
            ChangeRequest.status == "scheduled",
            ChangeRequest.window_start <= now,
            ChangeRequest.window_end > now,
        )
    ).all()
    for change in opened:
        sent += send_reminder(change, WINDOW_OPEN)
    return sent


@jobs.job
def reminder_sweep_job() -> str:
    return f"{remind_due()} change reminders sent"
