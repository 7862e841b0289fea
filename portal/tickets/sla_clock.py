"""SLA clocks: how much of a ticket's target is used, and when it is due, from stored events.

Nothing here reads the clock or the database: a ticket's SLA is recomputed by replaying its
stored events against `now`, so any due time shown can be recomputed and explained later.

Every datetime taken or returned is naive UTC, as the tables store them; durations are
integer seconds. Business hours are wall-clock times in the calendar's zone, converted to
UTC day by day, so a day with a DST change counts its real length (e.g. 00:00-23:59 on the
day Europe/Berlin springs forward is 22 h 59 min). A wall-clock time that does not exist
(skipped by the change) is taken as shifted forward by the gap; one that occurs twice is
taken at its first occurrence (PEP 495, fold=0).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

AT_RISK_SHARE = 0.75

CALENDAR_KINDS = ("24x7", "business")
EVENT_KINDS = ("start", "pause", "resume", "stop", "target")
_SECOND = timedelta(seconds=1)
_DAY = timedelta(days=1)


@dataclass(frozen=True)
class Calendar:
    """When SLA time runs. kind "24x7": always. kind "business": on `weekdays`
    (Monday=0) between `start` and `end` local wall-clock time in `timezone`,
    except the dates in `holidays` (local dates).

    An `end` at or before `start` means the window runs past midnight into the next
    day (22:00-06:00 is a night shift; 00:00-00:00 the whole day); the window belongs to
    the day it starts on, for `weekdays` and `holidays`.
    """

    kind: str = "24x7"
    timezone: str = "UTC"
    weekdays: frozenset[int] = frozenset({0, 1, 2, 3, 4})
    start: time = time(9, 0)
    end: time = time(17, 0)
    holidays: frozenset[date] = frozenset()

    def __post_init__(self) -> None:
        # Calendars come from stored settings: coerce lists to frozensets so the value
        # stays hashable, and fail here rather than loop forever in add_business_seconds.
        object.__setattr__(self, "weekdays", frozenset(self.weekdays))
        object.__setattr__(self, "holidays", frozenset(self.holidays))
        if self.kind not in CALENDAR_KINDS:
            raise ValueError(f"unknown calendar kind {self.kind!r}")
        try:
            ZoneInfo(self.timezone)
        except (ValueError, KeyError) as exc:  # ZoneInfoNotFoundError is a KeyError
            raise ValueError(f"unknown time zone {self.timezone!r}") from exc
        if not self.weekdays or not self.weekdays <= set(range(7)):
            raise ValueError("weekdays must be a non-empty set of 0 (Monday) .. 6 (Sunday)")


def business_seconds_between(calendar: Calendar, start: datetime, end: datetime) -> int:
    """Whole seconds of calendar time in [start, end); 0 if end <= start.

    Rounded down, so that a clock never shows time it has not fully used.
    """
    return _business_time(calendar, start, end) // _SECOND


def add_business_seconds(calendar: Calendar, start: datetime, seconds: int) -> datetime:
    """The earliest instant t >= start with business_seconds_between(start, t) == seconds.

    With seconds == 0 this is `start` itself, even outside business hours: nothing has to
    elapse, and snapping forward would make a zero target due later than it began. A
    positive amount that ends exactly at a window's close returns that close, not the next
    opening. Negative amounts raise ValueError (no caller needs to count backwards).
    """
    if seconds < 0:
        raise ValueError("seconds must be >= 0")
    return _add(calendar, start, timedelta(seconds=seconds))


@dataclass(frozen=True)
class ClockEvent:
    at: datetime  # naive UTC
    kind: str  # "start" | "pause" | "resume" | "stop" | "target"
    # Required for "start" and "target": a policy or priority change sets a new target and
    # keeps the time already used.
    target_seconds: int | None = None

    def __post_init__(self) -> None:
        _require_naive(self.at)
        if self.kind not in EVENT_KINDS:
            raise ValueError(f"unknown clock event {self.kind!r}")
        needs_target = self.kind in ("start", "target")
        if needs_target and (self.target_seconds is None or self.target_seconds < 0):
            raise ValueError(f"a {self.kind!r} event needs target_seconds >= 0")


@dataclass(frozen=True)
class ClockState:
    status: str  # "not_started" | "running" | "paused" | "met" | "breached"
    state: str  # the badge: "on_track" | "at_risk" | "breached" | "met"
    target_seconds: int | None
    used_seconds: int  # business seconds consumed, paused spans excluded
    paused_seconds: int  # wall-clock seconds spent paused, for reports
    started_at: datetime | None
    stopped_at: datetime | None
    due_at: datetime | None  # target used up: past if breached, else projected while running
    at_risk_at: datetime | None  # AT_RISK_SHARE of the target used: past, or projected
    breached_at: datetime | None  # when the target was used up, once it is exceeded


def replay(calendar: Calendar, events: Sequence[ClockEvent], now: datetime) -> ClockState:
    """The SLA clock as of `now`, from a ticket's events (in any order).

    Events apply in order of `at`, equal times in the given order; events after `now` are
    ignored, one exactly at `now` applies. Events that make no sense in the current status
    are ignored, so a duplicated pause or resume changes nothing:

    - "start" starts a not-started clock; any later "start" is ignored.
    - "pause" stops a running clock consuming; "resume" continues a paused one.
    - "stop" ends a running or paused clock: "met", or "breached" if it has breached.
    - "resume" after "stop" is a reopen: the clock runs again from the time already used.
    - "target" sets a new target from that instant, keeping the time used; if more than the
      new target is used already, the clock breaches at that instant. While stopped, the
      recorded outcome stays and the new target applies from a reopen.

    A breach is final: raising the target afterwards does not undo it, so lowering a
    priority cannot erase a breach from the reports.

    A running clock past its target keeps status "running" with state "breached". The
    clock breaches once it has used more than its target; `breached_at` (and then `due_at`)
    is the instant the target was used up, even if the excess only began at the next
    opening (a target used up at Friday's close breaches on Monday, dated Friday). Until
    then a stop still counts as met. `due_at` and `at_risk_at` give the past instant when
    it already happened; otherwise, while running, when it will happen if the clock keeps
    running from `now`; otherwise None.
    """
    _require_naive(now)
    clock = _Clock(calendar)
    for event in sorted((e for e in events if e.at <= now), key=lambda e: e.at):
        clock.apply(event)
    return clock.state_at(now)


@dataclass
class _Clock:
    """The mutable replay state; `used` is kept exact and only rounded for display."""

    calendar: Calendar
    status: str = "not_started"
    target: timedelta = timedelta(0)
    target_after_reopen: timedelta | None = None
    used: timedelta = timedelta(0)
    paused: timedelta = timedelta(0)
    since: datetime | None = None  # start of the current running or paused span
    started_at: datetime | None = None
    stopped_at: datetime | None = None
    reached_at: datetime | None = None  # when `used` reached the current target
    at_risk_at: datetime | None = None
    breached_at: datetime | None = None

    @property
    def at_risk_mark(self) -> timedelta:
        return self.target * AT_RISK_SHARE

    def apply(self, event: ClockEvent) -> None:
        at, kind, status = event.at, event.kind, self.status
        if kind == "start" and status == "not_started":
            self.status, self.started_at, self.since = "running", at, at
            self._set_target(timedelta(seconds=event.target_seconds or 0), at)
        elif kind == "pause" and status == "running":
            self._consume(at)
            self.status = "paused"
        elif kind == "resume" and status == "paused":
            self.paused += at - self.since
            self.status, self.since = "running", at
        elif kind == "resume" and status in ("met", "breached"):
            self.status, self.since, self.stopped_at = "running", at, None
            if self.target_after_reopen is not None:
                self._set_target(self.target_after_reopen, at)
                self.target_after_reopen = None
        elif kind == "stop" and status in ("running", "paused"):
            if status == "running":
                self._consume(at)
            else:
                self.paused += at - self.since
            self.status = "breached" if self.breached_at else "met"
            self.stopped_at, self.since = at, None
        elif kind == "target" and status in ("running", "paused"):
            target = timedelta(seconds=event.target_seconds or 0)
            # A repeated target is no change: it must not re-date marks already reached.
            if target != self.target:
                if status == "running":
                    self._consume(at)
                self._set_target(target, at)
        elif kind == "target" and status in ("met", "breached"):
            target = timedelta(seconds=event.target_seconds or 0)
            self.target_after_reopen = target if target != self.target else None

    def _set_target(self, target: timedelta, at: datetime) -> None:
        self.target = target
        if self.breached_at:
            return
        # Under a new target, "reached" and "at risk" date from this instant if already true,
        # except that a clock continuously at risk keeps the instant it became so.
        self.reached_at = at if self.used >= target else None
        if self.used > target:
            self.breached_at = at
        if self.used < self.at_risk_mark:
            self.at_risk_at = None
        elif self.at_risk_at is None:
            self.at_risk_at = at

    def _consume(self, until: datetime) -> None:
        """Count the running span up to `until`, dating any mark it crossed exactly."""
        span_start, before = self.since, self.used
        self.used += _business_time(self.calendar, span_start, until)
        self.since = until
        if self.at_risk_at is None and self.used >= self.at_risk_mark:
            self.at_risk_at = _add(self.calendar, span_start, self.at_risk_mark - before)
        if self.reached_at is None and self.used >= self.target:
            self.reached_at = _add(self.calendar, span_start, self.target - before)
        if self.breached_at is None and self.used > self.target:
            self.breached_at = self.reached_at

    def state_at(self, now: datetime) -> ClockState:
        paused = self.paused
        if self.status == "running":
            self._consume(now)
        elif self.status == "paused":
            paused += now - self.since
        started = self.status != "not_started"
        running = self.status == "running"
        if self.status in ("met", "breached"):
            badge = self.status
        elif self.breached_at:
            badge = "breached"
        elif started and self.used >= self.at_risk_mark:
            badge = "at_risk"
        else:
            badge = "on_track"
        due_at = self.breached_at or (self.reached_at if running else None)
        if running and due_at is None:
            due_at = _add(self.calendar, now, self.target - self.used)
        at_risk_at = self.at_risk_at
        if running and at_risk_at is None:
            at_risk_at = _add(self.calendar, now, self.at_risk_mark - self.used)
        return ClockState(
            status=self.status,
            state=badge,
            target_seconds=self.target // _SECOND if started else None,
            used_seconds=self.used // _SECOND,
            paused_seconds=paused // _SECOND,
            started_at=self.started_at,
            stopped_at=self.stopped_at,
            due_at=due_at if started else None,
            at_risk_at=at_risk_at if started else None,
            breached_at=self.breached_at,
        )


def _require_naive(value: datetime) -> None:
    # An aware datetime would compare wrongly or raise deep inside; say so at the door.
    if value.tzinfo is not None:
        raise ValueError(f"expected a naive UTC datetime, got {value!r}")


def _business_time(calendar: Calendar, start: datetime, end: datetime) -> timedelta:
    _require_naive(start)
    _require_naive(end)
    if end <= start:
        return timedelta(0)
    if calendar.kind == "24x7":
        return end - start
    total = timedelta(0)
    for opens, closes in _windows(calendar, start):
        if opens >= end:
            break
        total += min(closes, end) - max(opens, start)
    return total


def _add(calendar: Calendar, start: datetime, amount: timedelta) -> datetime:
    _require_naive(start)
    if amount <= timedelta(0):
        return start
    if calendar.kind == "24x7":
        return start + amount
    # Terminates: weekdays is non-empty and holidays finite, so windows keep coming.
    for opens, closes in _windows(calendar, start):
        begin = max(opens, start)
        if amount <= closes - begin:
            return begin + amount
        amount -= closes - begin
    raise AssertionError("unreachable: _windows never ends")


def _windows(calendar: Calendar, since: datetime) -> Iterator[tuple[datetime, datetime]]:
    """Business windows as naive UTC (opens, closes), in order, from the one open at `since`.

    One conversion per local day, so a week-long target costs a handful of steps.
    """
    zone = ZoneInfo(calendar.timezone)
    overnight = calendar.end <= calendar.start
    # Start a day early: yesterday's overnight window may still be open at `since`.
    day = since.replace(tzinfo=UTC).astimezone(zone).date() - _DAY
    while True:
        if day.weekday() in calendar.weekdays and day not in calendar.holidays:
            opens = _wall_to_utc(day, calendar.start, zone)
            closes = _wall_to_utc(day + _DAY if overnight else day, calendar.end, zone)
            # A DST gap can leave a window empty (opening at 02:30 is read as 03:30).
            if closes > since and closes > opens:
                yield opens, closes
        day += _DAY


def _wall_to_utc(day: date, wall: time, zone: ZoneInfo) -> datetime:
    local = datetime.combine(day, wall.replace(tzinfo=None, fold=0), tzinfo=zone)
    return local.astimezone(UTC).replace(tzinfo=None)
