"""The service-desk report against a small data set whose figures are worked out by hand.

Driving the services through weeks of simulated time is impractical, so the tickets are
written directly with set creation, response and resolution times: their SLA events come
from the real `portal.tickets.sla` functions (start, first response, status and priority
changes, at the given times) and their stored SLA columns from `sla.recompute`, which
replays those events on the business-hours calendar; their field history (status,
priority, level) is written as the `TicketChange` rows the services would write.

The calendar: business hours 09:00–17:00 UTC, Monday to Friday, with Wednesday
2026-03-04 a holiday; every policy counts on it. The viewer is in Europe/Berlin (UTC+1
in March), so a report day runs from 23:00 UTC the day before to 23:00 UTC.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import date, datetime, timedelta
from html.parser import HTMLParser

import pytest
from sqlalchemy import update

from portal.extensions import db
from portal.reports.period import ReportPeriod
from portal.tickets import sla
from portal.tickets.models import Ticket, TicketChange
from portal.tickets.setup_models import Holiday, SlaPolicy
from portal.timeutil import utcnow
from tests.factories import make_user, sign_in_client

GENERAL, BILLING, TECHNICAL, ENGINEERING = 1, 3, 4, 5
PERIOD = "period=custom&start=2026-03-02&end=2026-03-10"
HX = {"HX-Request": "true"}


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def make_ticket(requester, priority, type_, team, created, assignee=None, steps=()):  # noqa: ANN001,ANN201
    """A ticket filed at `created`, then `steps` in time order: ("respond", at),
    ("status", new, at), ("priority", new, at), ("level", new, at)."""
    ticket = Ticket(
        subject=f"{type_} {priority} {created:%d %H:%M}",
        type=type_,
        priority=priority,
        team_id=team,
        requester_id=requester.id,
        assignee_id=assignee.id if assignee else None,
        status="assigned" if assignee else "new",
        created_at=created,
        updated_at=created,
        status_changed_at=created,
    )
    db.session.add(ticket)
    db.session.flush()
    sla.start(ticket, created)
    for kind, *rest in steps:
        when = rest[-1]
        if kind == "respond":
            ticket.first_response_at = when
            sla.first_response(ticket, when)
            continue
        new = rest[0]
        old = getattr(ticket, {"status": "status", "priority": "priority", "level": "level"}[kind])
        db.session.add(
            TicketChange(
                ticket_id=ticket.id, field=kind, old_value=old, new_value=new, created_at=when
            )
        )
        if kind == "status":
            sla.status_changed(ticket, old, new, when)
            ticket.status = new
            ticket.resolved_at = when if new == "resolved" else None
        elif kind == "priority":
            ticket.priority = new
            sla.priority_changed(ticket, when)
        else:
            ticket.level = new
    sla.recompute(ticket, now=utcnow())
    db.session.commit()
    return ticket


@pytest.fixture
def data(ctx):  # noqa: ANN001,ANN201
    db.session.execute(update(SlaPolicy).values(calendar_id=2))
    db.session.add(Holiday(calendar_id=2, day=date(2026, 3, 4), name="Spring holiday"))
    db.session.commit()
    rita = make_user(role="requester", name="Rita Requester")
    ada = make_user(role="agent", name="Ada Agent")
    ben = make_user(role="agent", name="Ben Agent")
    now = utcnow()
    t = {}
    # Mon 08:00, before hours: response 30 min, resolution Mon 8 h + Tue 1 h = 9 h.
    t[1] = make_ticket(rita, "high", "request", GENERAL, at("2026-03-02 08:00"), ada, [
        ("respond", at("2026-03-02 09:30")),
        ("status", "in_progress", at("2026-03-02 09:31")),
        ("status", "resolved", at("2026-03-03 10:00")),
    ])  # fmt: skip
    # Filed low, raised to medium; the holiday counts nothing; pending Thu 11:00 → Fri
    # 15:00. Response Tue 1 h + Thu 1 h = 2 h; resolution 1 + 2 + 2 (Fri) + 3 (Mon) = 8 h.
    t[2] = make_ticket(rita, "low", "incident", TECHNICAL, at("2026-03-03 16:00"), ben, [
        ("priority", "medium", at("2026-03-03 16:30")),
        ("respond", at("2026-03-05 10:00")),
        ("status", "in_progress", at("2026-03-05 10:01")),
        ("status", "pending", at("2026-03-05 11:00")),
        ("status", "in_progress", at("2026-03-06 15:00")),
        ("status", "resolved", at("2026-03-09 12:00")),
    ])  # fmt: skip
    # Escalated twice, resolved, reopened, resolved again: response 1 h (target 15 min,
    # breached); resolution Thu 3 h + Fri 30 min = 3.5 h (target 4 h, met).
    t[3] = make_ticket(rita, "critical", "request", ENGINEERING, at("2026-03-05 09:00"), ada, [
        ("level", "L2", at("2026-03-05 09:30")),
        ("respond", at("2026-03-05 10:00")),
        ("status", "in_progress", at("2026-03-05 10:01")),
        ("level", "L3", at("2026-03-05 11:00")),
        ("status", "resolved", at("2026-03-05 12:00")),
        ("status", "in_progress", at("2026-03-06 09:00")),
        ("status", "resolved", at("2026-03-06 09:30")),
    ])  # fmt: skip
    # Over the weekend, still open: response Fri 1 h + Mon 30 min = 1.5 h.
    t[4] = make_ticket(rita, "low", "request", BILLING, at("2026-03-06 16:00"), ben, [
        ("respond", at("2026-03-09 09:30")),
        ("status", "in_progress", at("2026-03-09 09:31")),
        ("level", "L2", at("2026-03-09 10:00")),
    ])  # fmt: skip
    # Filed on Saturday: response Mon 1.5 h (target 1 h, breached); resolution Mon 8 h +
    # Tue 7 h = 15 h.
    t[5] = make_ticket(rita, "high", "incident", TECHNICAL, at("2026-03-07 10:00"), ada, [
        ("respond", at("2026-03-09 10:30")),
        ("status", "in_progress", at("2026-03-09 10:31")),
        ("status", "resolved", at("2026-03-10 16:00")),
    ])  # fmt: skip
    # 23:30 UTC on Sunday is Monday 00:30 in Berlin: inside the period. Never answered:
    # its response target is breached (decided) without a response time.
    t[6] = make_ticket(rita, "medium", "request", GENERAL, at("2026-03-01 23:30"))
    # Tuesday 23:30 UTC is Wednesday 11 March in Berlin: after the period, all of it.
    t[7] = make_ticket(rita, "medium", "request", GENERAL, at("2026-03-10 23:30"), ben, [
        ("level", "L2", at("2026-03-10 23:40")),
        ("status", "resolved", at("2026-03-10 23:45")),
    ])  # fmt: skip
    # The backlog's young tickets, aged from now.
    t[8] = make_ticket(rita, "critical", "request", GENERAL, now - timedelta(hours=2), ada)
    t[9] = make_ticket(rita, "low", "request", GENERAL, now - timedelta(days=2), ben, [
        ("status", "pending", now - timedelta(days=1)),
    ])  # fmt: skip
    t[10] = make_ticket(rita, "high", "request", TECHNICAL, now - timedelta(days=10))
    return {"tickets": t, "ada": ada, "ben": ben, "rita": rita}


@pytest.fixture
def viewer(client, data):  # noqa: ANN001,ANN201
    user = make_user(role="agent", name="Viewer", timezone="Europe/Berlin")
    sign_in_client(client, user)
    return user


class Tables(HTMLParser):
    """The figure tables of a page: {figure key: [[cell text, ...], ...]} (header first)."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.current: list[list[str]] | None = None
        self.cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):  # noqa: ANN001,ANN201
        attrs = dict(attrs)
        if tag == "table" and attrs.get("id", "").startswith("table-"):
            self.current = self.tables.setdefault(attrs["id"][6:], [])
        elif tag == "tr" and self.current is not None:
            self.current.append([])
        elif tag in ("td", "th") and self.current is not None:
            self.cell = []

    def handle_endtag(self, tag):  # noqa: ANN001,ANN201
        if tag == "table":
            self.current = None
        elif tag in ("td", "th") and self.current is not None and self.cell is not None:
            self.current[-1].append("".join(self.cell).strip())
            self.cell = None

    def handle_data(self, text):  # noqa: ANN001,ANN201
        if self.cell is not None:
            self.cell.append(text)


def tables(html: str) -> dict[str, list[list[str]]]:
    parser = Tables()
    parser.feed(html)
    return parser.tables


def body(table: list[list[str]]) -> list[list[str]]:
    return table[1:]


def test_every_figure_matches_the_hand_worked_values(client, viewer):  # noqa: ANN001,ANN201
    response = client.get(f"/reports/service-desk?{PERIOD}")
    assert response.status_code == 200, response.text
    assert '<a class="nav-link" href="/reports/service-desk">Reports</a>' in response.text
    found = tables(response.text)
    days = ["2026-03-0" + str(d) for d in range(2, 10)] + ["2026-03-10"]
    created = {"2026-03-02": 2, "2026-03-03": 1, "2026-03-05": 1, "2026-03-06": 1,
               "2026-03-07": 1}  # fmt: skip
    resolved = {"2026-03-03": 1, "2026-03-06": 1, "2026-03-09": 1, "2026-03-10": 1}
    assert body(found["created_resolved"]) == [
        [d, str(created.get(d, 0)), str(resolved.get(d, 0))] for d in days
    ]
    assert body(found["backlog"]) == [
        ["critical", "1", "0", "0", "0", "0", "1"],
        ["high", "0", "0", "0", "1", "0", "1"],
        ["medium", "0", "0", "0", "0", "1", "1"],
        ["low", "0", "1", "0", "0", "1", "2"],
        ["All", "1", "1", "0", "1", "2", "5"],
    ]
    assert body(found["sla"]) == [
        ["Priority", "critical", "0", "1", "0.0", "1", "1", "100.0"],
        ["Priority", "high", "1", "2", "50.0", "2", "2", "100.0"],
        ["Priority", "medium", "1", "2", "50.0", "1", "1", "100.0"],
        ["Priority", "low", "1", "1", "100.0", "0", "0", "—"],
        ["Team", "Billing", "1", "1", "100.0", "0", "0", "—"],
        ["Team", "Engineering", "0", "1", "0.0", "1", "1", "100.0"],
        ["Team", "General support", "1", "2", "50.0", "1", "1", "100.0"],
        ["Team", "Technical", "1", "2", "50.0", "2", "2", "100.0"],
        ["Month", "2026-03", "3", "6", "50.0", "4", "4", "100.0"],
    ]
    # Response: 30, 60, 90, 90, 120 min → median 90, p90 at 3.6 → 90 + 0.6·30 = 108.
    # Resolution: 210, 480, 540, 900 min → median 510, p90 at 2.7 → 540 + 0.7·360 = 792.
    assert body(found["business_times"]) == [
        ["First response", "5", "90.0", "108.0"],
        ["Resolution", "4", "510.0", "792.0"],
    ]
    assert body(found["workload"]) == [["Ada Agent", "1", "3"], ["Ben Agent", "2", "1"]]
    assert body(found["escalations"]) == [["L2", "2", "2"], ["L3", "1", "1"]]
    assert body(found["reopen"]) == [["1", "4", "25.0"]]


def test_the_stored_clock_figures_are_the_hand_worked_ones(data):  # noqa: ANN001,ANN201
    t = data["tickets"]
    assert [t[i].response_seconds for i in range(1, 7)] == [1800, 7200, 3600, 5400, 5400, None]
    assert [t[i].resolution_seconds for i in (1, 2, 3, 5)] == [32400, 28800, 12600, 54000]
    assert [t[i].response_state for i in range(1, 7)] == [
        "met", "met", "breached", "met", "breached", "breached"
    ]  # fmt: skip


def test_filters_narrow_every_figure(client, viewer):  # noqa: ANN001,ANN201
    found = tables(client.get(f"/reports/service-desk?{PERIOD}&type=incident").text)
    assert sum(int(r[1]) for r in body(found["created_resolved"])) == 2
    assert body(found["workload"]) == [["Ada Agent", "0", "1"], ["Ben Agent", "0", "1"]]
    assert body(found["reopen"]) == [["0", "2", "0.0"]]
    assert body(found["backlog"])[-1] == ["All", "0", "0", "0", "0", "0", "0"]
    found = tables(client.get(f"/reports/service-desk?{PERIOD}&team={ENGINEERING}").text)
    assert body(found["escalations"]) == [["L2", "1", "1"], ["L3", "1", "1"]]
    found = tables(client.get(f"/reports/service-desk?{PERIOD}&priority=low").text)
    assert [r[0] for r in body(found["backlog"])] == ["low", "All"]


def test_days_are_the_viewers_days(client, data):  # noqa: ANN001,ANN201
    sign_in_client(client, make_user(role="agent", timezone="UTC"))
    found = tables(client.get(f"/reports/service-desk?{PERIOD}").text)
    rows = body(found["created_resolved"])
    # In UTC the Sunday-night ticket is before the period and the Tuesday-night one in it.
    assert sum(int(r[1]) for r in rows) == 6 and rows[0] == ["2026-03-02", "1", "0"]
    assert rows[-1] == ["2026-03-10", "1", "2"]


def test_a_long_period_counts_per_week(client, viewer):  # noqa: ANN001,ANN201
    response = client.get("/reports/service-desk?start=2026-01-01&end=2026-06-30")
    rows = body(tables(response.text)["created_resolved"])
    assert response.status_code == 200 and rows[0][0] == "2026-01-01" and len(rows) == 26
    assert rows[1][0] == "2026-01-08"
    assert sum(int(r[1]) for r in rows) == 7 and sum(int(r[2]) for r in rows) == 5


def _csv(client, figure: str, query: str = PERIOD) -> list[list[str]]:  # noqa: ANN001
    response = client.get(f"/reports/service-desk.csv?{query}&figure={figure}")
    assert response.status_code == 200
    assert response.headers["Content-Disposition"].startswith("attachment;")
    text = response.get_data().decode("utf-8")
    assert text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text[1:], newline="")))


def test_each_csv_holds_the_figures_its_page_shows(client, viewer):  # noqa: ANN001,ANN201
    page = client.get(f"/reports/service-desk?{PERIOD}")
    found = tables(page.text)
    assert len(found) == 7
    for key, table in found.items():
        assert f"/reports/service-desk.csv?figure={key}&amp;period=custom" in page.text
        shown = [[cell.replace("—", "") for cell in row] for row in table]
        assert _csv(client, key) == shown, key


def test_csv_cells_are_defused(client, viewer, data):  # noqa: ANN001,ANN201
    data["ada"].name = "=HYPERLINK(1)"
    db.session.commit()
    rows = _csv(client, "workload")
    assert rows[1][0] == "'=HYPERLINK(1)"


def _listed(client, href: str) -> list[int]:  # noqa: ANN001
    response = client.get(href.replace("&amp;", "&"), headers=HX)
    assert response.status_code == 200
    return [int(i) for i in re.findall(r'<td><a href="/tickets/(\d+)">', response.text)]


def test_a_linked_figure_counts_exactly_the_tickets_its_list_shows(client, viewer, data):  # noqa: ANN001,ANN201
    t = data["tickets"]
    html = client.get(f"/reports/service-desk?{PERIOD}").text
    links = re.findall(r'<a class="figure-link" href="([^"]+)">(\d+)</a>', html)
    assert len(links) == 5 + 2  # backlog: four priorities and the total; two agents
    for href, count in links:
        assert len(_listed(client, href)) == int(count), href
    expected = {
        "status=open&amp;priority=low": {t[4].id, t[9].id},
        f"status=open&amp;assignee={data['ben'].id}": {t[4].id, t[9].id},
        f"status=open&amp;assignee={data['ada'].id}": {t[8].id},
        "status=open": {t[i].id for i in (4, 6, 8, 9, 10)},
    }
    for fragment, ids in expected.items():
        href = next(h for h, _ in links if h == "/tickets/?" + fragment)
        assert set(_listed(client, href)) == ids, href
    # Where the list cannot express a figure, the page says so instead of linking.
    assert "cannot filter by creation or resolution date" in html


BAD_INPUT = [
    ("period=custom&start=2026-03-10&end=2026-03-01", "end date is before the start"),
    ("period=custom&start=2026-02-30&end=2026-03-01", "2026-02-30” does not exist"),
    ("period=custom&start=0000-01-01&end=2026-01-01", "must fall between"),
    ("period=custom&start=2026-01-01&end=2526-01-01", "at most five years"),
    ("period=custom&start=yesterday&end=2026-01-01", "not a date in the form"),
    ("period=custom", "Give a start date"),
    ("period=forever", "Unknown period"),
    ("team=999999", "Unknown team"),
    ("team=abc", "Unknown team"),
    ("priority=urgent", "Unknown priority"),
    ("type=problem", "Unknown type"),
]


@pytest.mark.parametrize(("query", "message"), BAD_INPUT)
def test_bad_input_gives_a_message_and_this_months_figures(client, viewer, query, message):  # noqa: ANN001,ANN201
    for headers in ({}, HX):
        response = client.get(f"/reports/service-desk?{query}", headers=headers)
        assert response.status_code == 422
        assert message in response.text
        assert 'id="table-backlog"' in response.text
    assert client.get(f"/reports/service-desk.csv?{query}&figure=backlog").status_code == 422


def test_the_fragment_is_the_results_block(client, viewer):  # noqa: ANN001,ANN201
    response = client.get(f"/reports/service-desk?{PERIOD}", headers=HX)
    assert response.status_code == 200
    # No page around it: only the tab bar, out of band, so its links follow the period.
    assert "<html" not in response.text and 'id="table-sla"' in response.text
    assert response.text.count("<nav") == 1 and 'hx-swap-oob="true"' in response.text


def test_charts_are_inline_svg_without_style_attributes(client, viewer):  # noqa: ANN001,ANN201
    response = client.get(f"/reports/service-desk?{PERIOD}")
    svgs = re.findall(r"<svg.*?</svg>", response.text, re.S)
    assert len(svgs) == 5
    assert all("style=" not in svg and 'role="img"' in svg for svg in svgs)
    assert "style-src 'self'" in response.headers["Content-Security-Policy"]
    assert 'id="chart-backlog-clip"' in response.text


def test_the_page_runs_a_fixed_number_of_queries(client, viewer, count_queries):  # noqa: ANN001,ANN201
    client.get("/reports/service-desk")  # the session's first request also records it
    counts = []
    for query in (PERIOD, "start=2021-01-01&end=2025-12-31", "priority=high&type=incident"):
        with count_queries() as counter:
            assert client.get(f"/reports/service-desk?{query}").status_code == 200
        counts.append(counter.count)
    # The signed-in session, the team choices, then one query per figure.
    assert counts == [1 + 1 + 7] * 3


def test_a_requester_may_not_run_reports(client, data):  # noqa: ANN001,ANN201
    sign_in_client(client, data["rita"])
    assert client.get("/reports/service-desk").status_code == 403
    assert client.get("/reports/service-desk.csv?figure=backlog").status_code == 403
    assert "/reports/service-desk" not in client.get("/tickets/").text


def test_named_periods(app):  # noqa: ANN001,ANN201
    today = date(2026, 1, 15)

    def days(period: str) -> tuple[date, date]:
        found = ReportPeriod.from_args({"period": period}, "UTC", {}, today=today)
        return found.start, found.end

    assert days("this_month") == (date(2026, 1, 1), date(2026, 1, 31))
    assert days("last_month") == (date(2025, 12, 1), date(2025, 12, 31))
    assert days("this_quarter") == (date(2026, 1, 1), date(2026, 3, 31))
    berlin = ReportPeriod.from_args(
        {"start": "2026-03-29", "end": "2026-03-29"}, "Europe/Berlin", {}
    )
    # The day Berlin springs forward is 23 hours long.
    assert (berlin.utc_start, berlin.utc_end) == (at("2026-03-28 23:00"), at("2026-03-29 22:00"))
    assert berlin.as_args() == {"period": "custom", "start": "2026-03-29", "end": "2026-03-29"}


def test_the_tabs_follow_a_period_changed_in_place(client, ctx):
    sign_in_client(client, make_user(role="admin"))
    fragment = client.get(
        "/reports/service-desk?period=last_month", headers={"HX-Request": "true"}
    ).text
    assert 'id="report-tabs" hx-swap-oob="true"' in fragment
    assert 'href="/reports/incidents?period=last_month"' in fragment
    page = client.get("/reports/service-desk?period=last_month").text
    assert page.count('id="report-tabs"') == 1 and "hx-swap-oob" not in page


def test_sla_compliance_by_month_follows_the_viewers_zone(client, viewer, data):  # noqa: ANN001,ANN201
    rita = data["rita"]
    # 22:30 UTC on 28 February is still February in Berlin; 23:30 UTC is 1 March there.
    # Neither is ever answered: both response targets are breached.
    make_ticket(rita, "medium", "request", GENERAL, at("2026-02-28 22:30"))
    make_ticket(rita, "medium", "request", GENERAL, at("2026-02-28 23:30"))
    found = tables(
        client.get("/reports/service-desk?period=custom&start=2026-01-20&end=2026-03-10").text
    )
    months = [row for row in body(found["sla"]) if row[0] == "Month"]
    assert months == [
        ["Month", "2026-01", "0", "0", "—", "0", "0", "—"],
        ["Month", "2026-02", "0", "1", "0.0", "0", "0", "—"],
        ["Month", "2026-03", "3", "7", "42.9", "4", "4", "100.0"],
    ]
