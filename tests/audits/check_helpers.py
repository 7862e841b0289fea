"""Running one audit check over the period a run at `now` would audit."""

from __future__ import annotations

from datetime import datetime, timedelta

from portal.audits.check_types import Context, Outcome
from portal.audits.checks import BY_KEY, period_for
from portal.timeutil import utcnow


def run_check(key: str, now: datetime | None = None) -> Outcome:
    check = BY_KEY[key]
    start, end = period_for(check.schedule, now or utcnow(), "UTC")
    return check.function(Context(check.schedule, start, end))


def today_s_run() -> datetime:
    """A moment tomorrow: a daily run then audits today, where the test's events are."""
    return utcnow() + timedelta(days=1)


def subjects(outcome: Outcome) -> set[str]:
    return {draft.subject_key for draft in outcome.drafts}
