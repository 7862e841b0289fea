"""SLA clock arithmetic and replay: pure functions, no app and no database.

Expected instants are written as literal naive UTC with the local time in a comment, so a
test does not lean on the same zone conversion the code under test uses.
"""

import random
import timeit
from datetime import UTC, date, datetime, time, timedelta

import pytest

from portal.tickets.sla_clock import (
    Calendar,
    ClockEvent,
    add_business_seconds,
    business_seconds_between,
    replay,
)

HOUR = 3600
ALWAYS = Calendar()
BERLIN_OFFICE = Calendar(kind="business", timezone="Europe/Berlin")
NEW_YORK_OFFICE = Calendar(kind="business", timezone="America/New_York")


@pytest.fixture(autouse=True)
def _transaction():
    # Overrides the conftest's per-test database transaction: nothing here touches the
    # database, and skipping it keeps this module fast.
    yield


def start(at, target):
    return ClockEvent(at, "start", target)


def pause(at):
    return ClockEvent(at, "pause")


def resume(at):
    return ClockEvent(at, "resume")


def stop(at):
    return ClockEvent(at, "stop")


def retarget(at, target):
    return ClockEvent(at, "target", target)


# --- 24x7 ---------------------------------------------------------------------------------


def test_always_calendar_adds_and_measures_across_midnight():
    evening = datetime(2026, 1, 16, 22, 30)
    assert add_business_seconds(ALWAYS, evening, 4 * HOUR) == datetime(2026, 1, 17, 2, 30)
    assert business_seconds_between(ALWAYS, evening, datetime(2026, 1, 17, 2, 30)) == 4 * HOUR


def test_empty_or_reversed_span_is_zero():
    noon = datetime(2026, 1, 16, 12, 0)
    assert business_seconds_between(ALWAYS, noon, noon) == 0
    assert business_seconds_between(BERLIN_OFFICE, noon, noon - timedelta(hours=1)) == 0


def test_partial_seconds_are_rounded_down():
    begin = datetime(2026, 1, 16, 12, 0)
    assert business_seconds_between(ALWAYS, begin, begin + timedelta(seconds=9.999)) == 9


# --- business hours, Europe/Berlin (CET = UTC+1 in January) ------------------------------


def test_friday_afternoon_ticket_is_due_monday_morning():
    friday_1630 = datetime(2026, 1, 16, 15, 30)
    assert add_business_seconds(BERLIN_OFFICE, friday_1630, HOUR) == datetime(
        2026, 1, 19, 8, 30
    )  # Monday 09:30 CET
    clock = replay(BERLIN_OFFICE, [start(friday_1630, HOUR)], now=friday_1630)
    assert clock.due_at == datetime(2026, 1, 19, 8, 30)
    assert clock.at_risk_at == datetime(2026, 1, 19, 8, 15)  # 45 min: 30 Friday, 15 Monday


def test_weekend_ticket_is_due_one_hour_after_monday_opening():
    saturday = datetime(2026, 1, 17, 10, 0)
    clock = replay(BERLIN_OFFICE, [start(saturday, HOUR)], now=saturday)
    assert clock.due_at == datetime(2026, 1, 19, 9, 0)  # Monday 10:00 CET
    assert business_seconds_between(BERLIN_OFFICE, saturday, datetime(2026, 1, 19, 8, 0)) == 0


def test_early_ticket_starts_consuming_at_opening():
    monday_0800 = datetime(2026, 1, 19, 7, 0)
    monday_0900 = datetime(2026, 1, 19, 8, 0)
    assert business_seconds_between(BERLIN_OFFICE, monday_0800, monday_0900) == 0
    assert add_business_seconds(BERLIN_OFFICE, monday_0800, 1) == monday_0900 + timedelta(seconds=1)
    events = [start(monday_0800, HOUR)]
    assert replay(BERLIN_OFFICE, events, now=monday_0800).due_at == datetime(2026, 1, 19, 9, 0)
    assert replay(BERLIN_OFFICE, events, now=datetime(2026, 1, 19, 8, 30)).used_seconds == 1800


def test_zero_seconds_outside_hours_returns_start_unchanged():
    saturday = datetime(2026, 1, 17, 10, 0)
    assert add_business_seconds(BERLIN_OFFICE, saturday, 0) == saturday


def test_target_used_up_at_closing_is_due_at_closing_not_next_opening():
    friday_1600 = datetime(2026, 1, 16, 15, 0)
    assert add_business_seconds(BERLIN_OFFICE, friday_1600, HOUR) == datetime(
        2026, 1, 16, 16, 0
    )  # Friday 17:00 CET


def test_monday_holiday_pushes_due_time_to_tuesday():
    calendar = Calendar(
        kind="business", timezone="Europe/Berlin", holidays=frozenset({date(2026, 1, 19)})
    )
    friday_1630 = datetime(2026, 1, 16, 15, 30)
    assert add_business_seconds(calendar, friday_1630, HOUR) == datetime(
        2026, 1, 20, 8, 30
    )  # Tuesday 09:30 CET
    assert business_seconds_between(calendar, friday_1630, datetime(2026, 1, 20, 8, 0)) == 1800


def test_week_long_target_spans_whole_business_weeks():
    monday_0900 = datetime(2026, 1, 19, 8, 0)
    due = add_business_seconds(BERLIN_OFFICE, monday_0900, 7 * 8 * HOUR)
    assert due == datetime(2026, 1, 27, 16, 0)  # Tuesday of the next week, 17:00 CET


def test_calendar_accepts_plain_sets_and_rejects_nonsense():
    calendar = Calendar(kind="business", weekdays={0, 1}, holidays=[date(2026, 1, 19)])
    assert calendar.weekdays == frozenset({0, 1}) and hash(calendar)
    with pytest.raises(ValueError):
        Calendar(kind="weekly")
    with pytest.raises(ValueError):
        Calendar(kind="business", weekdays=frozenset())
    with pytest.raises(ValueError):
        Calendar(timezone="Europe/Atlantis")
    with pytest.raises(ValueError):
        add_business_seconds(ALWAYS, datetime(2026, 1, 19), -1)


def test_night_shift_window_runs_past_midnight():
    nights = Calendar(kind="business", weekdays=frozenset({0}), start=time(22), end=time(6))
    monday_2300 = datetime(2026, 1, 19, 23, 0)
    assert add_business_seconds(nights, monday_2300, 7 * HOUR) == datetime(2026, 1, 20, 6, 0)
    assert add_business_seconds(nights, monday_2300, 8 * HOUR) == datetime(2026, 1, 26, 23, 0)
    assert business_seconds_between(nights, datetime(2026, 1, 19), datetime(2026, 1, 21)) == (
        8 * HOUR
    )


# --- DST: seconds are real elapsed seconds -----------------------------------------------


def test_always_calendar_in_berlin_counts_real_seconds_over_dst_changes():
    berlin_always = Calendar(timezone="Europe/Berlin")
    # Saturday 12:00 CET -> Sunday 12:00 CEST is 23 real hours.
    assert (
        business_seconds_between(
            berlin_always, datetime(2026, 3, 28, 11, 0), datetime(2026, 3, 29, 10, 0)
        )
        == 23 * HOUR
    )
    # Saturday 12:00 CEST -> Sunday 12:00 CET is 25 real hours.
    assert (
        business_seconds_between(
            berlin_always, datetime(2026, 10, 24, 10, 0), datetime(2026, 10, 25, 11, 0)
        )
        == 25 * HOUR
    )
    assert add_business_seconds(berlin_always, datetime(2026, 3, 28, 11, 0), 24 * HOUR) == (
        datetime(2026, 3, 29, 11, 0)  # Sunday 13:00 CEST
    )


def test_business_day_containing_a_dst_change_counts_its_real_length():
    sundays = Calendar(
        kind="business",
        timezone="Europe/Berlin",
        weekdays=frozenset({6}),
        start=time(0, 0),
        end=time(23, 59),
    )
    # 00:00 CET (Sat 23:00 UTC) to 23:59 CEST (21:59 UTC): 22 h 59 min.
    spring = business_seconds_between(sundays, datetime(2026, 3, 28), datetime(2026, 3, 30))
    assert spring == 22 * HOUR + 59 * 60
    # 00:00 CEST (Sat 22:00 UTC) to 23:59 CET (22:59 UTC): 24 h 59 min.
    autumn = business_seconds_between(sundays, datetime(2026, 10, 24), datetime(2026, 10, 26))
    assert autumn == 24 * HOUR + 59 * 60
    assert add_business_seconds(sundays, datetime(2026, 3, 28, 23, 0), 3 * HOUR) == datetime(
        2026, 3, 29, 2, 0
    )  # 05:00 CEST: only three real hours after midnight


def test_night_shift_over_the_dst_night_counts_real_hours():
    nights = Calendar(
        kind="business",
        timezone="Europe/Berlin",
        weekdays=frozenset({5}),
        start=time(22),
        end=time(6),
    )
    # Sat 22:00 CET (21:00 UTC) -> Sun 06:00 CEST (04:00 UTC).
    assert business_seconds_between(nights, datetime(2026, 3, 28), datetime(2026, 3, 30)) == (
        7 * HOUR
    )
    assert add_business_seconds(nights, datetime(2026, 3, 28), 7 * HOUR) == datetime(
        2026, 3, 29, 4, 0
    )
    # Sat 22:00 CEST (20:00 UTC) -> Sun 06:00 CET (05:00 UTC).
    assert business_seconds_between(nights, datetime(2026, 10, 24), datetime(2026, 10, 26)) == (
        9 * HOUR
    )


def test_opening_inside_the_dst_gap_moves_forward_by_the_gap():
    calendar = Calendar(
        kind="business", timezone="Europe/Berlin", weekdays=frozenset({6}), start=time(2, 30)
    )
    # 02:30 does not exist on 2026-03-29; it is read as 03:30 CEST = 01:30 UTC.
    assert add_business_seconds(calendar, datetime(2026, 3, 28), 1) == datetime(
        2026, 3, 29, 1, 30, 1
    )


def test_new_york_spring_forward():
    ny_always = Calendar(timezone="America/New_York")
    # Saturday 12:00 EST (17:00 UTC) + 24 h = Sunday 13:00 EDT (17:00 UTC).
    assert add_business_seconds(ny_always, datetime(2026, 3, 7, 17, 0), 24 * HOUR) == datetime(
        2026, 3, 8, 17, 0
    )
    sundays = Calendar(
        kind="business",
        timezone="America/New_York",
        weekdays=frozenset({6}),
        start=time(0, 0),
        end=time(23, 59),
    )
    # 00:00 EST (05:00 UTC) to 23:59 EDT (03:59 UTC Monday).
    assert business_seconds_between(sundays, datetime(2026, 3, 8), datetime(2026, 3, 10)) == (
        22 * HOUR + 59 * 60
    )
    # Office hours stay 09:00-17:00 on the wall clock across the change.
    friday_0900 = datetime(2026, 3, 6, 14, 0)  # EST
    assert add_business_seconds(NEW_YORK_OFFICE, friday_0900, 16 * HOUR) == datetime(
        2026, 3, 9, 21, 0
    )  # Monday 17:00 EDT


def test_adding_then_measuring_round_trips():
    rng = random.Random(20260329)
    calendars = [
        ALWAYS,
        BERLIN_OFFICE,
        NEW_YORK_OFFICE,
        Calendar(
            kind="business",
            timezone="Europe/Berlin",
            holidays=frozenset({date(2026, 3, 30), date(2026, 10, 26)}),
        ),
        Calendar(
            kind="business", timezone="Europe/Berlin", weekdays=frozenset(range(7)), end=time(1)
        ),
    ]
    # Starts cluster around the DST changes, where mistakes would hide.
    anchors = [datetime(2026, 3, 27), datetime(2026, 10, 23), datetime(2026, 3, 6)]
    for _ in range(400):
        calendar = rng.choice(calendars)
        begin = rng.choice(anchors) + timedelta(seconds=rng.randrange(6 * 24 * HOUR))
        seconds = rng.choice([0, 1, 59, HOUR, rng.randrange(5 * 8 * HOUR)])
        due = add_business_seconds(calendar, begin, seconds)
        assert due >= begin
        assert business_seconds_between(calendar, begin, due) == seconds, (calendar, begin)
        if seconds:  # and it is the earliest such instant
            assert business_seconds_between(calendar, begin, due - timedelta(seconds=1)) == (
                seconds - 1
            )
        middle = begin + (due - begin) / 2
        assert business_seconds_between(calendar, begin, middle) + business_seconds_between(
            calendar, middle, due
        ) in (seconds, seconds - 1)  # the split may round down half a second once


def test_a_week_long_target_is_added_in_well_under_a_millisecond():
    monday = datetime(2026, 1, 19, 8, 0)
    # The best of several rounds, so a busy machine does not fail the test.
    best = min(
        timeit.repeat(
            lambda: add_business_seconds(BERLIN_OFFICE, monday, 7 * 24 * HOUR),
            number=50,
            repeat=5,
        )
    )
    assert best / 50 < 0.001


# --- replay --------------------------------------------------------------------------------

MONDAY_0900 = datetime(2026, 1, 19, 8, 0)  # CET


def at(hours, day=MONDAY_0900):
    return day + timedelta(hours=hours)


def test_no_events_is_not_started():
    clock = replay(BERLIN_OFFICE, [], now=MONDAY_0900)
    assert clock.status == "not_started" and clock.state == "on_track"
    assert (clock.target_seconds, clock.due_at, clock.used_seconds) == (None, None, 0)


def test_running_clock_reports_use_and_due_time():
    clock = replay(BERLIN_OFFICE, [start(MONDAY_0900, 4 * HOUR)], now=at(1))
    assert clock.status == "running" and clock.state == "on_track"
    assert clock.used_seconds == HOUR and clock.target_seconds == 4 * HOUR
    assert clock.started_at == MONDAY_0900 and clock.stopped_at is None
    assert clock.due_at == at(4) and clock.at_risk_at == at(3)
    assert clock.breached_at is None


def test_pause_over_the_weekend_counts_only_business_time_outside_it():
    friday_1400 = datetime(2026, 1, 16, 13, 0)  # CET
    events = [
        start(friday_1400, 4 * HOUR),
        pause(datetime(2026, 1, 16, 15, 0)),  # Friday 16:00
        resume(datetime(2026, 1, 19, 10, 0)),  # Monday 11:00
    ]
    paused = replay(BERLIN_OFFICE, events, now=datetime(2026, 1, 18, 12, 0))
    assert paused.status == "paused" and paused.used_seconds == 2 * HOUR
    assert paused.due_at is None and paused.at_risk_at is None
    clock = replay(BERLIN_OFFICE, events, now=datetime(2026, 1, 19, 11, 0))  # Monday 12:00
    assert clock.status == "running" and clock.used_seconds == 3 * HOUR
    assert clock.paused_seconds == 67 * HOUR  # Friday 16:00 -> Monday 11:00, wall clock
    assert clock.due_at == datetime(2026, 1, 19, 12, 0)  # Monday 13:00, not 11:00
    assert clock.at_risk_at == datetime(2026, 1, 19, 11, 0)


def test_priority_raise_past_the_used_time_breaches_at_once():
    events = [start(MONDAY_0900, 4 * HOUR), retarget(at(2), HOUR)]
    clock = replay(BERLIN_OFFICE, events, now=at(2))
    assert clock.status == "running" and clock.state == "breached"
    assert clock.target_seconds == HOUR and clock.used_seconds == 2 * HOUR
    assert clock.breached_at == at(2) and clock.due_at == at(2)
    assert clock.at_risk_at == at(2)


def test_priority_lowered_moves_due_time_later():
    events = [start(MONDAY_0900, HOUR), retarget(at(0.5), 4 * HOUR)]
    assert replay(BERLIN_OFFICE, events[:1], now=at(0.5)).due_at == at(1)
    clock = replay(BERLIN_OFFICE, events, now=at(0.5))
    assert clock.due_at == at(4) and clock.at_risk_at == at(3)
    assert clock.state == "on_track" and clock.used_seconds == 1800


def test_priority_change_while_paused_applies_from_the_resume():
    events = [
        start(MONDAY_0900, 4 * HOUR),
        pause(at(1)),
        retarget(at(2), 2 * HOUR),
        resume(at(3)),
    ]
    clock = replay(BERLIN_OFFICE, events, now=at(3))
    assert clock.due_at == at(4) and clock.at_risk_at == at(3.5)


def test_breach_while_running_is_dated_in_the_past():
    clock = replay(BERLIN_OFFICE, [start(MONDAY_0900, HOUR)], now=at(5))
    assert clock.state == "breached" and clock.status == "running"
    assert clock.breached_at == at(1) and clock.due_at == at(1)
    assert clock.at_risk_at == at(0.75)


def test_stop_within_target_is_met_and_after_it_breached():
    met = replay(BERLIN_OFFICE, [start(MONDAY_0900, HOUR), stop(at(0.5))], now=at(3))
    assert (met.status, met.state, met.used_seconds) == ("met", "met", 1800)
    assert met.stopped_at == at(0.5) and met.due_at is None and met.breached_at is None
    late = replay(BERLIN_OFFICE, [start(MONDAY_0900, HOUR), stop(at(2))], now=at(3))
    assert (late.status, late.state) == ("breached", "breached")
    assert late.breached_at == at(1) and late.due_at == at(1)


def test_state_moves_from_on_track_to_at_risk_to_breached():
    events = [start(MONDAY_0900, 4 * HOUR)]
    second = timedelta(seconds=1)

    def state(now):
        return replay(BERLIN_OFFICE, events, now=now).state

    assert state(at(3) - second) == "on_track"
    assert state(at(3)) == "at_risk"  # exactly 75 %
    assert state(at(4)) == "at_risk"  # exactly the target: used up, not exceeded
    assert state(at(4) + second) == "breached"
    assert replay(BERLIN_OFFICE, events, now=at(3)).at_risk_at == at(3)


def test_target_used_up_at_friday_close_breaches_only_when_time_runs_again():
    friday_1600 = datetime(2026, 1, 16, 15, 0)  # CET
    friday_1700 = datetime(2026, 1, 16, 16, 0)
    events = [start(friday_1600, HOUR)]
    weekend = replay(BERLIN_OFFICE, events, now=datetime(2026, 1, 17, 12, 0))
    assert weekend.state == "at_risk" and weekend.breached_at is None
    assert weekend.due_at == friday_1700
    resolved_saturday = events + [stop(datetime(2026, 1, 17, 12, 0))]
    assert replay(BERLIN_OFFICE, resolved_saturday, now=at(5)).status == "met"
    monday = replay(BERLIN_OFFICE, events, now=at(0.5))
    assert monday.state == "breached" and monday.breached_at == friday_1700


def test_reopen_continues_from_the_time_already_used():
    events = [start(MONDAY_0900, 4 * HOUR), stop(at(1)), resume(at(24))]  # Tuesday 09:00
    resolved = replay(BERLIN_OFFICE, events, now=at(23))
    assert resolved.status == "met" and resolved.used_seconds == HOUR
    clock = replay(BERLIN_OFFICE, events, now=at(25))
    assert clock.status == "running" and clock.stopped_at is None
    assert clock.used_seconds == 2 * HOUR and clock.due_at == at(27)  # Tuesday 12:00


def test_target_change_while_resolved_keeps_the_outcome_and_applies_on_reopen():
    events = [start(MONDAY_0900, 4 * HOUR), stop(at(2)), retarget(at(3), HOUR)]
    resolved = replay(BERLIN_OFFICE, events, now=at(4))
    assert resolved.status == "met" and resolved.target_seconds == 4 * HOUR
    reopened = replay(BERLIN_OFFICE, events + [resume(at(5))], now=at(5))
    assert reopened.state == "breached" and reopened.breached_at == at(5)


def test_a_breach_is_not_undone_by_raising_the_target():
    events = [start(MONDAY_0900, HOUR), retarget(at(2), 8 * HOUR), stop(at(3))]
    clock = replay(BERLIN_OFFICE, events, now=at(4))
    assert clock.status == "breached" and clock.breached_at == at(1)


def test_duplicated_events_change_nothing():
    plain = [start(MONDAY_0900, 4 * HOUR), pause(at(1)), resume(at(2)), stop(at(3))]
    noisy = [
        start(MONDAY_0900, 4 * HOUR),
        resume(at(0.5)),  # already running
        start(at(0.6), HOUR),  # already started
        pause(at(1)),
        pause(at(1.5)),
        retarget(at(1.6), 4 * HOUR),  # the same target
        resume(at(2)),
        resume(at(2.5)),
        stop(at(3)),
        stop(at(3.5)),
        pause(at(3.6)),  # stopped
        retarget(at(3.7), 4 * HOUR),  # stopped, and the same target
    ]
    for now in (at(1.7), at(2.7), at(5)):
        assert replay(BERLIN_OFFICE, noisy, now=now) == replay(BERLIN_OFFICE, plain, now=now)


def test_events_after_now_are_ignored_and_order_of_input_does_not_matter():
    events = [stop(at(3)), pause(at(1)), start(MONDAY_0900, 4 * HOUR)]
    clock = replay(BERLIN_OFFICE, events, now=at(2))
    assert clock.status == "paused" and clock.used_seconds == HOUR
    assert clock.stopped_at is None and clock.paused_seconds == HOUR


def test_events_at_the_same_instant_apply_in_the_given_order():
    on_hold_from_the_start = [start(MONDAY_0900, HOUR), pause(MONDAY_0900)]
    assert replay(BERLIN_OFFICE, on_hold_from_the_start, now=at(1)).status == "paused"
    pause_before_start = [pause(MONDAY_0900), start(MONDAY_0900, HOUR)]
    assert replay(BERLIN_OFFICE, pause_before_start, now=at(1)).status == "running"


def test_events_validate_their_fields():
    with pytest.raises(ValueError):
        ClockEvent(MONDAY_0900, "start")
    with pytest.raises(ValueError):
        ClockEvent(MONDAY_0900, "reopen")
    with pytest.raises(ValueError):
        ClockEvent(datetime(2026, 1, 19, tzinfo=UTC), "pause")
