"""The change calendar: months and weeks in the viewer's zone, freezes, who sees what, a
fixed number of queries, and bad query values."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest

from portal.changes.models import ChangeRequest
from portal.extensions import db
from portal.users.models import User
from tests.changes.helpers import make_change, make_freeze, make_service
from tests.factories import make_user

HOUR = timedelta(hours=1)


def on_calendar(
    start: datetime,
    end: datetime,
    requester: User | None = None,
    status: str = "scheduled",
    **fields: object,
) -> ChangeRequest:
    """A change holding [start, end) (naive UTC). The window is set on the row: the
    calendar shows what is stored, and scheduling refuses windows in the past."""
    change = make_change(requester=requester, **fields)
    change.status, change.window_start, change.window_end = status, start, end
    db.session.commit()
    return change


def day_cell(html: str, day: str) -> str:
    """The HTML of one day of the grid (a month's <td> or a week's <tr>)."""
    match = re.search(rf'<(td|tr)\b[^>]*id="day-{day}".*?</\1>', html, re.S)
    assert match, f"no cell for {day}"
    return match.group(0)


def test_month_grid_starts_on_monday_and_pads_whole_weeks(client, as_role):
    as_role("approver")
    page = client.get("/changes/calendar?view=month&date=2027-01-15")
    assert page.status_code == 200
    assert "January 2027" in page.text
    # 1 January 2027 is a Friday: the grid starts on Monday 28 December.
    days = re.findall(r'id="day-(\d{4}-\d{2}-\d{2})"', page.text)
    assert days[0] == "2026-12-28" and days[-1] == "2027-01-31"
    assert len(days) % 7 == 0
    assert "other-month" in day_cell(page.text, "2026-12-28")


def test_a_window_across_a_month_edge_shows_on_each_day_in_both_months(client, as_role):
    as_role("approver")
    change = on_calendar(datetime(2027, 1, 31, 22), datetime(2027, 2, 2, 6), title="Swap the core")
    january = client.get("/changes/calendar?view=month&date=2027-01-03").text
    assert change.number in day_cell(january, "2027-01-31")
    assert change.number not in day_cell(january, "2027-01-30")
    february = client.get("/changes/calendar?view=month&date=2027-02-20").text
    assert change.number in day_cell(february, "2027-02-01")
    assert change.number in day_cell(february, "2027-02-02")
    assert change.number not in day_cell(february, "2027-02-03")
    assert f'href="/changes/{change.id}"' in february


def test_only_window_holding_statuses_are_shown(client, as_role):
    as_role("approver")
    start = datetime(2027, 5, 10, 8)
    shown = [
        on_calendar(start, start + HOUR, status=s)
        for s in ("scheduled", "implementing", "validating")
    ]
    hidden = [
        on_calendar(start, start + HOUR, status=s) for s in ("approved", "completed", "draft")
    ]
    html = client.get("/changes/calendar?view=week&date=2027-05-10").text
    for change in shown:
        assert change.number in html
    for change in hidden:
        assert change.number not in html


def test_week_across_the_spring_clock_change_in_berlin(client, as_role):
    """28 March 2027: Berlin goes from CET (UTC+1) to CEST (UTC+2) at 02:00."""
    as_role("approver", timezone="Europe/Berlin")
    # Monday 00:30 CET is Sunday 23:30 UTC: it belongs to the Monday.
    monday = on_calendar(datetime(2027, 3, 21, 23, 30), datetime(2027, 3, 22, 1), title="Early")
    # Sunday 23:30 CEST is 21:30 UTC, still in the week.
    sunday = on_calendar(datetime(2027, 3, 28, 21, 30), datetime(2027, 3, 28, 21, 45), title="Late")
    # Monday 29th 00:30 CEST is 22:30 UTC on the 28th: the next week, not this one.
    next_week = on_calendar(datetime(2027, 3, 28, 22, 30), datetime(2027, 3, 28, 23), title="Next")
    # Across the gap: 01:00 CET to 04:00 CEST is two hours of real time.
    gap = on_calendar(datetime(2027, 3, 28, 0), datetime(2027, 3, 28, 2), title="Gap")
    page = client.get("/changes/calendar?view=week&date=2027-03-25")
    html = page.text
    assert "Week 12" in html and "Times in Europe/Berlin" in html
    days = re.findall(r'id="day-(\d{4}-\d{2}-\d{2})"', html)
    assert days == [f"2027-03-{d}" for d in range(22, 29)]
    assert monday.number in day_cell(html, "2027-03-22")
    assert "00:30" in day_cell(html, "2027-03-22")
    assert sunday.number in day_cell(html, "2027-03-28") and "23:30" in day_cell(html, "2027-03-28")
    assert next_week.number not in html
    gap_cell = day_cell(html, "2027-03-28")
    assert gap.number in gap_cell and "01:00" in gap_cell and "04:00" in gap_cell
    following = client.get("/changes/calendar?view=week&date=2027-03-29").text
    assert next_week.number in day_cell(following, "2027-03-29")
    assert "00:30" in day_cell(following, "2027-03-29")


def test_freeze_days_are_shaded_with_their_reason(client, as_role):
    as_role("agent")
    make_freeze(datetime(2027, 12, 20), datetime(2027, 12, 23), reason="Year-end trading")
    html = client.get("/changes/calendar?date=2027-12-01").text
    for day in ("2027-12-20", "2027-12-21", "2027-12-22"):
        cell = day_cell(html, day)
        assert "frozen" in cell and "bg-warning-subtle" in cell
    assert "Freeze: Year-end trading" in day_cell(html, "2027-12-20")
    assert "frozen" not in day_cell(html, "2027-12-23")
    assert "frozen" not in day_cell(html, "2027-12-19")
    assert 'id="calendar-freezes"' in html and "Year-end trading" in html


def test_a_requester_sees_only_their_own_changes(client, as_role):
    other = make_user(role="requester")
    start = datetime(2027, 6, 7, 9)
    theirs = on_calendar(start, start + HOUR, requester=other, title="Someone else's")
    me = as_role("requester")
    mine = on_calendar(start, start + HOUR, requester=me, title="Mine")
    html = client.get("/changes/calendar?view=week&date=2027-06-07").text
    assert mine.number in html
    assert theirs.number not in html and "Someone else" not in html


@pytest.mark.parametrize("role", ["admin", "approver", "agent", "auditor"])
def test_roles_that_read_all_changes_see_everyone_s(client, as_role, role):
    start = datetime(2027, 6, 7, 9)
    change = on_calendar(start, start + HOUR, requester=make_user(role="requester"))
    as_role(role)
    assert change.number in client.get("/changes/calendar?view=week&date=2027-06-07").text


def test_signed_out_visitors_are_sent_to_sign_in(client):
    response = client.get("/changes/calendar")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_navigation_links_carry_htmx_and_plain_hrefs(client, as_role):
    as_role("approver")
    html = client.get("/changes/calendar?view=month&date=2027-01-15").text
    prev = re.search(r'<a[^>]*id="calendar-prev"[^>]*>', html).group(0)
    assert 'href="/changes/calendar?view=month&amp;date=2026-12-01"' in prev
    assert 'hx-get="/changes/calendar?view=month&amp;date=2026-12-01"' in prev
    assert 'hx-target="#calendar"' in prev and 'hx-push-url="true"' in prev
    assert "date=2027-02-01" in re.search(r'<a[^>]*id="calendar-next"[^>]*>', html).group(0)
    week = client.get("/changes/calendar?view=week&date=2027-01-15").text
    assert "date=2027-01-04" in re.search(r'<a[^>]*id="calendar-prev"[^>]*>', week).group(0)
    assert "date=2027-01-18" in re.search(r'<a[^>]*id="calendar-next"[^>]*>', week).group(0)


def test_htmx_gets_only_the_calendar_fragment(client, as_role):
    as_role("approver")
    response = client.get(
        "/changes/calendar?view=week&date=2027-01-15", headers={"HX-Request": "true"}
    )
    assert response.status_code == 200
    assert "<html" not in response.text and 'id="calendar-grid"' in response.text
    assert "HX-Request" in response.headers["Vary"]


def _calendar_queries(client, count_queries, n: int, requester: User) -> list[str]:
    services = [make_service(f"Svc {n}"), make_service(f"Other {n}")]
    for i in range(n):
        start = datetime(2027, 9, 1 + i % 28, 8)
        on_calendar(start, start + 30 * HOUR, requester=requester, services_=services)
    url = "/changes/calendar?view=month&date=2027-09-10"
    client.get(url)  # the page's shared parts (the incident banner) are cached after one
    with count_queries() as counter:
        response = client.get(url)
    assert response.status_code == 200
    assert response.text.count("CR-0") >= n
    return list(counter.statements)


def test_the_calendar_runs_a_fixed_number_of_queries(app, client, as_role, count_queries, settings):
    settings(SHARED_CACHE_SECONDS=0)  # the worst case: nothing shared, everything asked
    as_role("approver")
    requester = make_user(role="requester")
    few = _calendar_queries(client, count_queries, 3, requester)
    db.session.execute(db.delete(ChangeRequest))
    db.session.commit()
    many = _calendar_queries(client, count_queries, 20, requester)
    assert len(few) == len(many)
    # The calendar's own: the changes with their services, and the freezes.
    ours = [s for s in many if "change_services" in s or "freeze_periods" in s]
    assert len(ours) == 2, ours


def test_the_calendar_is_shared_until_a_change_service_or_freeze_is_written(
    client, as_role, count_queries
):
    as_role("auditor")
    web = make_service("Web shop")
    url = "/changes/calendar?view=week&date=2027-09-06"
    first = on_calendar(datetime(2027, 9, 7, 8), datetime(2027, 9, 7, 9), services_=[web])
    assert first.number in client.get(url).text

    def calendar_statements() -> tuple[str, list[str]]:
        with count_queries() as counter:
            page = client.get(url).text
        asked = [s for s in counter.statements if "change_services" in s or "freeze_" in s]
        return page, asked

    page, asked = calendar_statements()
    assert first.number in page and asked == []

    second = on_calendar(datetime(2027, 9, 8, 8), datetime(2027, 9, 8, 9), services_=[web])
    page, asked = calendar_statements()
    assert second.number in page and len(asked) == 1

    web.name = "Storefront"
    db.session.commit()
    page, asked = calendar_statements()
    assert "Storefront" in page and "Web shop" not in day_cell(page, "2027-09-07")

    make_freeze(datetime(2027, 9, 9), datetime(2027, 9, 10), reason="Quarter close")
    page, asked = calendar_statements()
    assert "Quarter close" in day_cell(page, "2027-09-09") and len(asked) == 1


@pytest.mark.parametrize(
    "query",
    [
        "date=garbage",
        "date=2027-13-45",
        "date=99999-01-01",
        "date=0001-01-01",
        "date=9999-12-31",
        "date=2027-02-30",
        "date=%00",
        "view=x",
        "view=week&date=20270101",
        "view=year&date=",
        "view=month&view=week&date=2027-01-01&date=x",
        "date=" + "9" * 10_000,
        "view=%F0%9F%98%80&date=%E2%80%AE2027-01-01",
        "date=2027-01-01%00",
    ],
)
def test_bad_query_values_fall_back_to_today_and_month(client, as_role, query):
    as_role("approver")
    response = client.get(f"/changes/calendar?{query}")
    assert response.status_code == 200
    assert 'id="calendar-grid"' in response.text


def test_an_unknown_zone_on_the_account_falls_back(client, as_role):
    as_role("approver", timezone="Mars/Olympus_Mons")
    assert client.get("/changes/calendar").status_code == 200


def test_a_crowded_month_day_links_the_rest_to_its_week(client, as_role):
    as_role("approver")
    start = datetime(2027, 4, 14, 8)
    changes = [on_calendar(start + i * HOUR, start + (i + 1) * HOUR) for i in range(8)]
    cell = day_cell(client.get("/changes/calendar?date=2027-04-01").text, "2027-04-14")
    assert [c.number in cell for c in changes] == [True] * 6 + [False] * 2
    assert "+2 more" in cell and 'href="/changes/calendar?view=week&amp;date=2027-04-14"' in cell
    week = client.get("/changes/calendar?view=week&date=2027-04-14").text
    assert all(c.number in day_cell(week, "2027-04-14") for c in changes)
