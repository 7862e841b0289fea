"""The incident report against a small data set whose figures are worked out by hand.

The tickets are written directly as rows with set creation, first-response and
resolution times, and with their business seconds (`response_seconds`,
`resolution_seconds`) set by hand rather than replayed on an SLA calendar: this report
only reads those stored clocks, and the service-desk tests cover how they are computed.
Reviews and their action items are written directly too, with due dates around today.

The viewer is in UTC; the period is February and March 2026.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime, timedelta

import pytest

from portal.extensions import db
from portal.tickets.extra_models import ActionItem, IncidentReview
from portal.tickets.models import Ticket
from portal.timeutil import utcnow
from tests.factories import make_user, sign_in_client

from .test_service_desk import BAD_INPUT, HX, body, tables

GENERAL, TECHNICAL = 1, 4
PERIOD = "period=custom&start=2026-02-01&end=2026-03-31"
REPORT = "/reports/incidents"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def incident(requester, priority, status, created, team=GENERAL, **times):  # noqa: ANN001,ANN003,ANN201
    """An incident row as it stands after its life: `times` are first_response_at,
    resolved_at and the business seconds, all set by hand."""
    ticket = Ticket(
        subject=f"{priority} incident {created:%m-%d}",
        type=times.pop("type", "incident"),
        priority=priority,
        status=status,
        team_id=team,
        requester_id=requester.id,
        created_at=created,
        updated_at=created,
        status_changed_at=created,
        **times,
    )
    db.session.add(ticket)
    db.session.flush()
    return ticket


def review(ticket, author, due_offsets=(), done=()):  # noqa: ANN001,ANN201
    """A review of `ticket` with one action item per day offset from today (negative: due
    in the past); items whose index is in `done` are done."""
    written = IncidentReview(ticket_id=ticket.id, author_id=author.id, root_cause="cause")
    db.session.add(written)
    db.session.flush()
    today = utcnow().date()
    for i, offset in enumerate(due_offsets):
        db.session.add(
            ActionItem(
                review_id=written.id,
                description=f"item {i}",
                owner_id=author.id,
                due_on=today + timedelta(days=offset),
                done_at=utcnow() if i in done else None,
            )
        )
    return written


@pytest.fixture
def data(ctx):  # noqa: ANN001,ANN201
    rita = make_user(role="requester", name="Rita Requester")
    ada = make_user(role="agent", name="Ada Agent")
    t = {}
    # P0: acknowledged after 15 min (15 business), resolved after 4 h (240 business).
    t[1] = incident(rita, "critical", "resolved", at("2026-02-03 10:00"), TECHNICAL,
                    first_response_at=at("2026-02-03 10:15"), response_seconds=900,
                    resolved_at=at("2026-02-03 14:00"), resolution_seconds=14400)  # fmt: skip
    # P0, reviewed: 45 min (30 business) to acknowledge, 24 h (480 business) to resolve.
    t[2] = incident(rita, "critical", "closed", at("2026-03-10 09:00"), TECHNICAL,
                    first_response_at=at("2026-03-10 09:45"), response_seconds=1800,
                    resolved_at=at("2026-03-11 09:00"), resolution_seconds=28800)  # fmt: skip
    # P1, closed without its review: 60 min (60), 24 h (120 business).
    t[3] = incident(rita, "high", "closed", at("2026-02-20 12:00"),
                    first_response_at=at("2026-02-20 13:00"), response_seconds=3600,
                    resolved_at=at("2026-02-21 12:00"), resolution_seconds=7200)  # fmt: skip
    # P1, still being worked: acknowledged after 30 min (20 business).
    t[4] = incident(rita, "high", "in_progress", at("2026-03-05 08:00"),
                    first_response_at=at("2026-03-05 08:30"), response_seconds=1200)  # fmt: skip
    # P2, never answered.
    t[5] = incident(rita, "medium", "new", at("2026-03-20 10:00"))
    # P3 filed before the period and resolved in it: 8 days (480 business) to resolve;
    # its acknowledgement belongs to January.
    t[6] = incident(rita, "low", "resolved", at("2026-01-25 10:00"),
                    first_response_at=at("2026-01-25 11:00"), response_seconds=3600,
                    resolved_at=at("2026-02-02 10:00"), resolution_seconds=28800)  # fmt: skip
    # P0 after the period, still open.
    t[7] = incident(rita, "critical", "assigned", at("2026-04-02 10:00"))
    # A critical request: not an incident, counted nowhere.
    t[8] = incident(rita, "critical", "new", at("2026-03-02 10:00"), type="request",
                    first_response_at=at("2026-03-02 10:05"), response_seconds=300)  # fmt: skip
    # Overdue: one of t2's items (one is done, one due today, one tomorrow), two of t7's.
    review(t[2], ada, due_offsets=(-1, -10, 0, 1), done=(1,))
    review(t[7], ada, due_offsets=(-3, -2))
    db.session.commit()
    return {"tickets": t, "rita": rita}


@pytest.fixture
def viewer(client, data):  # noqa: ANN001,ANN201
    user = make_user(role="agent", name="Viewer", timezone="UTC")
    sign_in_client(client, user)
    return user


def test_every_figure_matches_the_hand_worked_values(client, viewer):  # noqa: ANN001,ANN201
    response = client.get(f"{REPORT}?{PERIOD}")
    assert response.status_code == 200, response.text
    found = tables(response.text)
    assert body(found["by_month"]) == [
        ["2026-02", "1", "1", "0", "0", "2"],
        ["2026-03", "1", "1", "1", "0", "3"],
        ["All", "2", "2", "1", "0", "5"],
    ]
    # P0: (15 + 45) / 2, (15 + 30) / 2; (240 + 1440) / 2, (240 + 480) / 2.
    # P1: (60 + 30) / 2, (60 + 20) / 2; one resolved: 1440, 120. P3: 8 days = 11,520 min.
    assert body(found["mean_times"]) == [
        ["P0 (critical)", "2", "30.0", "22.5", "2", "840.0", "360.0"],
        ["P1 (high)", "2", "45.0", "40.0", "1", "1440.0", "120.0"],
        ["P2 (medium)", "0", "—", "—", "0", "—", "—"],
        ["P3 (low)", "0", "—", "—", "1", "11520.0", "480.0"],
    ]
    assert body(found["unreviewed"]) == [
        ["P0 (critical)", "1", "0", "1"],
        ["P1 (high)", "0", "1", "1"],
    ]
    assert body(found["overdue_actions"]) == [
        ["P0 (critical)", "3", "2"],
        ["P1 (high)", "0", "0"],
        ["P2 (medium)", "0", "0"],
        ["P3 (low)", "0", "0"],
    ]
    assert body(found["open_now"]) == [
        ["P0 (critical)", "1"],
        ["P1 (high)", "1"],
        ["P2 (medium)", "1"],
        ["P3 (low)", "0"],
        ["All", "3"],
    ]


def test_filters_narrow_every_figure(client, viewer):  # noqa: ANN001,ANN201
    found = tables(client.get(f"{REPORT}?{PERIOD}&team={TECHNICAL}").text)
    assert body(found["by_month"])[-1] == ["All", "2", "0", "0", "0", "2"]
    assert body(found["unreviewed"]) == [
        ["P0 (critical)", "1", "0", "1"],
        ["P1 (high)", "0", "0", "0"],
    ]
    assert body(found["overdue_actions"])[0] == ["P0 (critical)", "1", "1"]
    found = tables(client.get(f"{REPORT}?{PERIOD}&priority=high").text)
    assert body(found["mean_times"]) == [["P1 (high)", "2", "45.0", "40.0", "1", "1440.0", "120.0"]]
    assert body(found["unreviewed"]) == [["P1 (high)", "0", "1", "1"]]
    assert body(found["open_now"]) == [["P1 (high)", "1"], ["All", "1"]]


def test_each_csv_holds_the_figures_its_page_shows(client, viewer):  # noqa: ANN001,ANN201
    page = client.get(f"{REPORT}?{PERIOD}")
    found = tables(page.text)
    assert len(found) == 5
    for key, table in found.items():
        response = client.get(f"{REPORT}.csv?{PERIOD}&figure={key}")
        assert response.status_code == 200
        assert response.headers["Content-Disposition"].startswith("attachment;")
        text = response.get_data().decode("utf-8")
        assert text.startswith("\ufeff")
        shown = [[cell.replace("—", "") for cell in row] for row in table]
        assert list(csv.reader(io.StringIO(text[1:], newline=""))) == shown, key
    assert client.get(f"{REPORT}.csv?{PERIOD}&figure=nope").status_code == 404


def test_a_linked_figure_counts_exactly_the_tickets_its_list_shows(client, viewer, data):  # noqa: ANN001,ANN201
    t = data["tickets"]
    html = client.get(f"{REPORT}?{PERIOD}").text
    links = re.findall(r'<a class="figure-link" href="([^"]+)">(\d+)</a>', html)
    assert len(links) == 5
    listed = {}
    for href, count in links:
        response = client.get(href.replace("&amp;", "&"), headers=HX)
        ids = {int(i) for i in re.findall(r'<td><a href="/tickets/(\d+)">', response.text)}
        assert len(ids) == int(count), href
        listed[href] = ids
    by_query = {href.split("?")[1]: ids for href, ids in listed.items()}
    assert by_query["type=incident&amp;status=open&amp;priority=critical"] == {t[7].id}
    assert by_query["type=incident&amp;status=open"] == {t[i].id for i in (4, 5, 7)}
    # Where the list cannot express a figure, the page says so instead of linking.
    assert "cannot filter by whether a review exists" in html
    assert "cannot filter by review action item" in html


@pytest.mark.parametrize(
    ("query", "message"),
    [pair for pair in BAD_INPUT if not pair[0].startswith("type=")]
    + [("priority=P0", "Unknown priority")],
)
def test_bad_input_gives_a_message_never_an_error(client, viewer, query, message):  # noqa: ANN001,ANN201
    for headers in ({}, HX):
        response = client.get(f"{REPORT}?{query}", headers=headers)
        assert response.status_code == 422
        assert message in response.text
        assert 'id="table-by_month"' in response.text
    assert client.get(f"{REPORT}.csv?{query}&figure=by_month").status_code == 422


def test_the_page_carries_the_tab_bar_and_its_fragment_updates_it(client, viewer):  # noqa: ANN001,ANN201
    page = client.get(f"{REPORT}?{PERIOD}").text
    assert 'aria-current="page" href="/reports/incidents?period=custom' in page
    assert 'href="/reports/changes?period=custom&amp;start=2026-02-01&amp;end=2026-03-31"' in page
    fragment = client.get(f"{REPORT}?{PERIOD}", headers=HX).text
    assert 'id="report-tabs" hx-swap-oob="true"' in fragment and 'id="table-open_now"' in fragment
    svgs = re.findall(r"<svg.*?</svg>", page, re.S)
    assert len(svgs) == 3 and all("style=" not in svg for svg in svgs)


def test_the_page_runs_a_fixed_number_of_queries(client, viewer, count_queries):  # noqa: ANN001,ANN201
    client.get(REPORT)
    counts = []
    for query in (PERIOD, "start=2021-01-01&end=2025-12-31", f"priority=high&team={GENERAL}"):
        with count_queries() as counter:
            assert client.get(f"{REPORT}?{query}").status_code == 200
        counts.append(counter.count)
    # The signed-in session, the team choices, then one query per figure.
    assert counts == [1 + 1 + 5] * 3


def test_a_requester_may_not_run_the_report(client, data):  # noqa: ANN001,ANN201
    sign_in_client(client, data["rita"])
    assert client.get(REPORT).status_code == 403
    assert client.get(f"{REPORT}.csv?figure=by_month").status_code == 403
