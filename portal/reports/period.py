"""A report's period and filters from the query string, both ways.

Read leniently, like the lists' filters (portal/query_args.py), but a report says what it
dropped: a wrong date or an unknown filter leaves a message for the page and falls back
to a sensible default (this month, no filter), never an error page. The period is whole
days in the viewer's time zone, turned into a half-open UTC range [utc_start, utc_end)
that every figure compares the stored naive-UTC times against.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from ..query_args import QueryArgs, positive_int
from ..tickets.models import TYPES
from ..tickets.setup_models import PRIORITIES

PERIODS = {
    "this_month": "This month",
    "last_month": "Last month",
    "this_quarter": "This quarter",
    "custom": "Custom range",
}
DEFAULT_PERIOD = "this_month"
# Longer ranges are almost always a typo (a year 2206 for 2026) and would chart
# thousands of weekly buckets.
MAX_DAYS = 5 * 366
# Dates a time zone can turn into UTC without leaving what a datetime holds.
MIN_YEAR, MAX_YEAR = 1970, 2999
# Up to about two months a chart shows days; beyond, weeks.
DAILY_UP_TO_DAYS = 62
ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
QUERY_KEYS = ("period", "start", "end", "team", "priority", "type")


def month_start(day: date) -> date:
    return day.replace(day=1)


def next_month(day: date) -> date:
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1)


def named_range(period: str, today: date) -> tuple[date, date]:
    """The first and last day (inclusive) of a named period around `today`."""
    if period == "last_month":
        last = month_start(today) - timedelta(days=1)
        return month_start(last), last
    if period == "this_quarter":
        first = date(today.year, 3 * ((today.month - 1) // 3) + 1, 1)
        return first, next_month(next_month(next_month(first))) - timedelta(days=1)
    return month_start(today), next_month(today) - timedelta(days=1)


def parse_day(text: str, label: str) -> tuple[date | None, str]:
    """A YYYY-MM-DD date, or None and a message that says what is wrong with it."""
    text = text.strip()[:40]
    if not text:
        return None, f"Give a {label} date for a custom range."
    if not ISO_DATE.fullmatch(text):
        return None, f"The {label} date “{text}” is not a date in the form YYYY-MM-DD."
    if not MIN_YEAR <= int(text[:4]) <= MAX_YEAR:
        return None, f"The {label} date must fall between {MIN_YEAR} and {MAX_YEAR}."
    try:
        return date.fromisoformat(text), ""
    except ValueError:
        return None, f"The {label} date “{text}” does not exist."


def custom_range(args: Any) -> tuple[date, date] | str:
    """The custom range the arguments give, or the message why they give none."""
    start, problem = parse_day(args.get("start", ""), "start")
    if start is None:
        return problem
    end, problem = parse_day(args.get("end", ""), "end")
    if end is None:
        return problem
    if end < start:
        return "The end date is before the start date."
    if (end - start).days + 1 > MAX_DAYS:
        return "A report covers at most five years; choose a shorter range."
    return start, end


@dataclass(frozen=True)
class ReportPeriod(QueryArgs):
    """Whole local days `start`..`end` (inclusive) and the filters; `messages` says
    what in the query string was not understood and what was shown instead."""

    DEFAULT_SORT: ClassVar[str] = ""

    period: str = DEFAULT_PERIOD
    start: date = date(1970, 1, 1)
    end: date = date(1970, 1, 1)
    team: int | None = None
    priority: str = ""
    type: str = ""
    zone: str = "UTC"
    messages: tuple[str, ...] = field(default=())

    @classmethod
    def from_args(
        cls,
        args: Any,
        zone: str,
        teams: dict[int, str],
        today: date | None = None,
        filters: tuple[str, ...] = ("team", "priority", "type"),
        types: tuple[str, ...] = TYPES,
    ) -> ReportPeriod:
        """`teams`: the ids a team filter may name (an unknown one is dropped). `filters`:
        the filters this report offers (others in the query string are not read);
        `types`: the values its type filter may take (the change report's differ)."""
        today = today or datetime.now(ZoneInfo(zone)).date()
        messages: list[str] = []
        # Dates alone mean a custom range: the form's date fields work without the select.
        dated = args.get("start") or args.get("end")
        period = args.get("period", "") or ("custom" if dated else DEFAULT_PERIOD)
        if period not in PERIODS:
            messages.append(f"Unknown period “{period[:40]}”; showing this month.")
            period = DEFAULT_PERIOD
        if period == "custom":
            found = custom_range(args)
            if isinstance(found, str):
                messages.append(found + " Showing this month instead.")
                period = DEFAULT_PERIOD
        if period != "custom":
            found = named_range(period, today)
        team = positive_int(args.get("team")) if "team" in filters else None
        if "team" in filters and args.get("team") and team not in teams:
            messages.append("Unknown team; showing every team.")
            team = None
        chosen = {}
        for name, allowed in (("priority", PRIORITIES), ("type", types)):
            value = args.get(name, "") if name in filters else ""
            if value and value not in allowed:
                messages.append(f"Unknown {name} “{value[:40]}”; showing every {name}.")
                value = ""
            chosen[name] = value
        return cls(
            period=period,
            start=found[0],
            end=found[1],
            team=team,
            zone=zone,
            messages=tuple(messages),
            **chosen,
        )

    def as_args(self, **changes: Any) -> dict[str, Any]:
        """The query string that gives this report again (dates only for a custom range)."""
        args = super().as_args(**changes)
        if args.get("period") == DEFAULT_PERIOD:
            del args["period"]
        if self.period != "custom":
            args.pop("start", None)
            args.pop("end", None)
        return {key: value for key, value in args.items() if key in QUERY_KEYS}

    def arg_value(self, key: str, value: Any) -> Any:
        return value.isoformat() if isinstance(value, date) else value

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def weekly(self) -> bool:
        return self.days > DAILY_UP_TO_DAYS

    def utc(self, day: date) -> datetime:
        """Local midnight at the start of `day`, as the naive UTC time tables store."""
        local = datetime.combine(day, time(0), tzinfo=ZoneInfo(self.zone))
        return local.astimezone(ZoneInfo("UTC")).replace(tzinfo=None)

    @property
    def utc_start(self) -> datetime:
        return self.utc(self.start)

    @property
    def utc_end(self) -> datetime:
        """Exclusive: midnight after the last day."""
        return self.utc(self.end + timedelta(days=1))

    def buckets(self) -> list[tuple[date, datetime, datetime]]:
        """The chart's days (or weeks from the first day): first day, UTC [start, end)."""
        step = 7 if self.weekly else 1
        out = []
        day = self.start
        while day <= self.end:
            last = min(day + timedelta(days=step), self.end + timedelta(days=1))
            out.append((day, self.utc(day), self.utc(last)))
            day = last
        return out

    @property
    def filter_args(self) -> dict[str, Any]:
        """The filters as the ticket list names them (the list has the same three)."""
        return {k: v for k, v in self.as_args().items() if k in ("team", "priority", "type")}

    @property
    def label(self) -> str:
        return f"{self.start.isoformat()} – {self.end.isoformat()}"
