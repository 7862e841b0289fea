"""Scheduling: overlapping windows on shared services, freezes, time zones, and the
emails and reminders a scheduled change sends."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from redis import Redis
from rq import Queue
from rq.job import Job
from sqlalchemy import select

from portal import jobs
from portal.audits.models import AuditEvent
from portal.changes import lifecycle, tasks
from portal.changes.conflicts import (
    FreezeConflict,
    WindowConflict,
    find_clashes,
    find_freezes,
    overlaps,
    to_utc,
    window_to_utc,
)
from portal.changes.models import ChangeHistory, ChangeReminder, ConflictAcknowledgement
from portal.errors import Conflict, ServiceError
from portal.extensions import db
from portal.timeutil import iso_utc, utcnow
from tests.changes.helpers import (
    HOUR,
    approved_change,
    later,
    mail_to,
    make_freeze,
    make_service,
    scheduled_change,
)
from tests.conftest import REDIS_URL, needs_redis
from tests.factories import make_user

MINUTE = timedelta(minutes=1)


# -- overlap, pure -----------------------------------------------------------------------------


def test_windows_are_half_open():
    a, b, c = datetime(2026, 5, 1, 1), datetime(2026, 5, 1, 2), datetime(2026, 5, 1, 3)
    assert not overlaps(a, b, b, c)  # touching: one ends as the other starts
    assert not overlaps(b, c, a, b)
    assert overlaps(a, b + MINUTE, b, c)  # one minute of overlap
    assert overlaps(a, c, b, b + MINUTE)  # one inside the other
    assert overlaps(a, b, a, b)


# -- time zones --------------------------------------------------------------------------------


def test_a_window_typed_in_berlin_across_the_spring_change_is_stored_in_utc():
    # 30 March 2025: Berlin's clocks go from 02:00 CET to 03:00 CEST.
    start, end = window_to_utc(
        datetime(2025, 3, 30, 1, 30), datetime(2025, 3, 30, 3, 30), "Europe/Berlin"
    )
    assert (start, end) == (datetime(2025, 3, 30, 0, 30), datetime(2025, 3, 30, 1, 30))
    assert end - start == HOUR  # two hours on the wall clock, one in reality


def test_a_window_typed_in_berlin_across_the_autumn_change_is_stored_in_utc():
    # 26 October 2025: 03:00 CEST becomes 02:00 CET; 02:30 happens twice (the first counts).
    start, end = window_to_utc(
        datetime(2025, 10, 26, 2, 30), datetime(2025, 10, 26, 3, 30), "Europe/Berlin"
    )
    assert (start, end) == (datetime(2025, 10, 26, 0, 30), datetime(2025, 10, 26, 2, 30))


def test_a_time_the_clocks_skip_is_refused():
    with pytest.raises(ServiceError, match="does not exist") as refused:
        to_utc(datetime(2025, 3, 30, 2, 30), "Europe/Berlin", "window_start")
    assert refused.value.field == "window_start"


def test_aware_times_and_bad_zones():
    aware = datetime(2025, 7, 1, 12, tzinfo=ZoneInfo("America/New_York"))
    assert to_utc(aware, "Europe/Berlin") == datetime(2025, 7, 1, 16)
    with pytest.raises(ServiceError, match="not a time zone"):
        to_utc(datetime(2025, 7, 1), "Mars/Olympus")
    with pytest.raises(ServiceError, match="end after it starts"):
        window_to_utc(datetime(2025, 7, 1, 3), datetime(2025, 7, 1, 3), "UTC")


def test_windows_typed_in_different_zones_conflict_by_their_utc_times(ctx):
    payments = make_service("Payments")
    year = utcnow().year + 1  # in July: New York is UTC-4, Berlin UTC+2
    # 22:00–23:00 in New York on 14 July is 02:00–03:00 UTC on 15 July …
    ny = window_to_utc(datetime(year, 7, 14, 22), datetime(year, 7, 14, 23), "America/New_York")
    assert ny == (datetime(year, 7, 15, 2), datetime(year, 7, 15, 3))
    first = scheduled_change(*ny, services_=[payments])
    second = approved_change([payments])
    # … which is 04:00–05:00 in Berlin: the same hour, so a conflict …
    berlin = window_to_utc(datetime(year, 7, 15, 4), datetime(year, 7, 15, 5), "Europe/Berlin")
    assert [c.change.id for c in find_clashes(second, *berlin)] == [first.id]
    # … while 05:00–06:00 in Berlin starts as the New York window ends.
    after = window_to_utc(datetime(year, 7, 15, 5), datetime(year, 7, 15, 6), "Europe/Berlin")
    assert find_clashes(second, *after) == []


# -- conflicts ---------------------------------------------------------------------------------


def test_conflicts_at_the_edges(ctx):
    web, mail = make_service("Web"), make_service("Mail")
    start = later()
    scheduled_change(start, start + HOUR, services_=[web])
    candidate = approved_change([web, mail])
    assert find_clashes(candidate, start + HOUR, start + 2 * HOUR) == []  # touching after
    assert find_clashes(candidate, start - HOUR, start) == []  # touching before
    [clash] = find_clashes(candidate, start + HOUR - MINUTE, start + 2 * HOUR)
    assert [s.name for s in clash.services] == ["Web"]
    assert len(find_clashes(candidate, start - HOUR, start + MINUTE)) == 1
    elsewhere = approved_change([mail])
    assert find_clashes(elsewhere, start, start + HOUR) == []  # no shared service


def test_changes_no_longer_holding_their_window_are_ignored(ctx):
    web = make_service("Web")
    start = later()
    holder = scheduled_change(start, start + HOUR, services_=[web])
    candidate = approved_change([web])
    for status, clashes in (
        ("implementing", 1),
        ("validating", 1),
        ("completed", 0),
        ("failed", 0),
        ("closed", 0),
    ):
        holder.status = status
        db.session.commit()
        assert len(find_clashes(candidate, start, start + HOUR)) == clashes, status
    # Approved but not yet scheduled: it holds nothing yet.
    approved_change([web], window=(start, start + HOUR))
    assert find_clashes(candidate, start, start + HOUR) == []


def test_an_overlap_must_be_acknowledged_and_the_acknowledgement_is_kept(ctx):
    web = make_service("Web")
    start = later()
    first = scheduled_change(start, start + 2 * HOUR, services_=[web])
    second = approved_change([web])
    with pytest.raises(WindowConflict) as refused:
        lifecycle.schedule(second, second.requester, (start + HOUR, start + 3 * HOUR))
    assert refused.value.status == 409
    assert [c.change.id for c in refused.value.clashes] == [first.id]
    assert first.number in refused.value.message
    assert second.status == "approved"
    acknowledged = lifecycle.schedule(
        second, second.requester, (start + HOUR, start + 3 * HOUR), acknowledge_conflicts=True
    )
    assert [c.change.id for c in acknowledged] == [first.id] and second.status == "scheduled"
    [ack] = db.session.scalars(
        select(ConflictAcknowledgement).where(ConflictAcknowledgement.change_id == second.id)
    ).all()
    assert (ack.other_change_id, ack.acknowledged_by_id, ack.services) == (
        first.id,
        second.requester_id,
        "Web",
    )
    event = db.session.scalar(
        select(AuditEvent).where(AuditEvent.action == "change.conflicts_acknowledged")
    )
    assert first.number in event.data["conflicts"][0]


def test_scheduling_needs_an_approved_change_and_a_window(ctx):
    change = approved_change()
    with pytest.raises(Conflict, match="Add a planned window before scheduling."):
        lifecycle.schedule(change, change.requester)
    start = later()
    with pytest.raises(ServiceError, match="already ended"):
        lifecycle.schedule(change, change.requester, (start - 3 * 24 * HOUR, utcnow() - HOUR))
    lifecycle.schedule(change, change.requester, (start, start + HOUR))
    with pytest.raises(Conflict):
        lifecycle.start_validating(change, change.requester)


def test_the_planned_window_is_used_when_none_is_given(ctx):
    start = later()
    change = approved_change(window=(start, start + HOUR))
    lifecycle.schedule(change, change.requester)
    assert (change.status, change.window_start) == ("scheduled", start)


# -- freezes -----------------------------------------------------------------------------------


def test_freezes_at_the_edges(ctx):
    start = later()
    make_freeze(start, start + 24 * HOUR)
    assert find_freezes(start - HOUR, start) == []
    assert find_freezes(start + 24 * HOUR, start + 25 * HOUR) == []
    assert len(find_freezes(start - HOUR, start + MINUTE)) == 1


def test_a_normal_change_cannot_be_scheduled_in_a_freeze(ctx):
    start = later()
    make_freeze(start, start + 24 * HOUR, "Black Friday")
    change = approved_change()
    with pytest.raises(FreezeConflict, match="Black Friday") as refused:
        lifecycle.schedule(change, change.requester, (start + HOUR, start + 2 * HOUR))
    assert refused.value.status == 409 and len(refused.value.freezes) == 1
    assert change.status == "approved"


def test_an_emergency_change_may_go_into_a_freeze_with_a_reason(ctx):
    start = later()
    make_freeze(start, start + 24 * HOUR, "Black Friday")
    change = approved_change(type_="emergency")
    window = (start + HOUR, start + 2 * HOUR)
    with pytest.raises(ServiceError, match="cannot wait") as refused:
        lifecycle.schedule(change, change.requester, window)
    assert refused.value.field == "freeze_reason"
    lifecycle.schedule(change, change.requester, window, freeze_reason="Card payments fail")
    assert (change.status, change.freeze_reason) == ("scheduled", "Card payments fail")
    event = db.session.scalar(
        select(AuditEvent).where(AuditEvent.action == "change.freeze_overridden")
    )
    assert (
        event.data["reason"] == "Card payments fail" and "Black Friday" in event.data["freezes"][0]
    )
    kept = db.session.scalar(
        select(ChangeHistory).where(
            ChangeHistory.change_id == change.id, ChangeHistory.field == "freeze_reason"
        )
    )
    assert kept.new_value == "Card payments fail"


# -- emails and reminders ------------------------------------------------------------------------


def test_scheduling_tells_the_owners_in_their_own_time_zone(ctx):
    owner = make_user(role="agent", timezone="Europe/Berlin")
    web = make_service("Web", owner)
    year = utcnow().year + 1
    start = datetime(year, 7, 15, 22)
    change = scheduled_change(start, start + HOUR, services_=[web])
    [notice] = mail_to(owner)
    assert change.number in notice.subject and "scheduled" in notice.subject
    assert f"{year}-07-16 00:00 CEST to {year}-07-16 01:00 CEST" in notice.body
    assert change.rollback_plan in notice.body
    assert [e for e in _actions() if e.startswith("change.")][-1] == "change.scheduled"


def _actions():
    return [e.action for e in db.session.scalars(select(AuditEvent).order_by(AuditEvent.id))]


def test_reminders_are_planned_for_the_day_before_and_the_opening(ctx, monkeypatch):
    planned = []
    real = jobs.enqueue

    def spy(func, *args, **options):
        planned.append((func.__name__, args, options.get("at")))
        return real(func, *args, **options)

    monkeypatch.setattr(jobs, "enqueue", spy)
    start = later(days=3)
    change = scheduled_change(start, start + HOUR)
    reminders = [p for p in planned if p[0] == "remind"]
    assert reminders == [
        ("remind", (change.id, "day_before", iso_utc(start)), start - timedelta(days=1)),
        ("remind", (change.id, "window_open", iso_utc(start)), start),
    ]


def test_a_reminder_run_twice_sends_once(ctx):
    owner = make_user(role="agent")
    start = later(days=3)
    change = scheduled_change(start, start + HOUR, services_=[make_service("Web", owner)])
    before = len(mail_to(owner))
    assert tasks.remind(change.id, "day_before", iso_utc(start)) == "sent"
    assert tasks.remind(change.id, "day_before", iso_utc(start)) == "already sent"
    reminders = mail_to(owner)[before:]
    assert len(reminders) == 1 and "Tomorrow" in reminders[0].subject
    assert db.session.scalars(select(ChangeReminder)).all()[0].kind == "day_before"


def test_a_reminder_for_an_old_window_does_nothing(ctx):
    start = later(days=3)
    change = scheduled_change(start, start + HOUR)
    lifecycle.schedule(change, change.requester, (start + 2 * HOUR, start + 3 * HOUR))
    assert tasks.remind(change.id, "day_before", iso_utc(start)) == "skipped"
    assert tasks.remind(change.id + 1000, "day_before", iso_utc(start)) == "skipped"


def test_the_sweep_sends_due_reminders_once(ctx):
    owner = make_user(role="agent")
    implementer = make_user(role="agent")
    start = later(days=3)
    change = scheduled_change(
        start, start + HOUR, services_=[make_service("Web", owner)], implementer=implementer
    )
    assert tasks.remind_due(start - timedelta(days=2)) == 0
    assert tasks.remind_due(start - timedelta(hours=20)) == 1
    assert tasks.remind_due(start - timedelta(hours=19)) == 0
    assert tasks.remind_due(start + MINUTE) == 1
    assert tasks.remind_due(start + 2 * MINUTE) == 0
    [opened] = mail_to(implementer)
    assert "window is open" in opened.subject and change.implementation_plan in opened.body
    lifecycle.start_implementing(change, implementer)
    assert change.status == "implementing"


@needs_redis
def test_reminders_wait_in_rq_scheduler_for_their_moments(app, ctx, settings):
    settings(REDIS_URL=REDIS_URL)
    app.extensions.pop("portal.redis", None)
    Redis.from_url(REDIS_URL).flushdb()
    try:
        start = later(days=3)
        change = scheduled_change(start, start + HOUR)
        registry = Queue("default", connection=jobs.connection(app)).scheduled_job_registry
        planned = sorted(
            (registry.get_scheduled_time(job_id).replace(tzinfo=None), job_id)
            for job_id in registry.get_job_ids()
        )
        assert [moment for moment, _ in planned] == [start - timedelta(days=1), start]
        job = Job.fetch(planned[0][1], connection=jobs.connection(app))
        assert job.args == (change.id, "day_before", iso_utc(start))
    finally:
        Redis.from_url(REDIS_URL).flushdb()
        app.extensions.pop("portal.redis", None)
