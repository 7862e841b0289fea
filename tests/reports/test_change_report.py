"""The change report against a small data set whose figures are worked out by hand.

The changes are written directly as rows in the state their life left them in, with set
windows and submission, decision and finish times, plus the status history rows the
services would have written on the way (the success rate reads what a closed change was
closed from there), their links to tickets and their acknowledged conflicts.

The viewer is in Europe/Berlin (UTC+1 in March, UTC+2 from 29 March); the period is
March 2026, so it runs from 2026-02-28 23:00 to 2026-03-31 22:00 UTC.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime

import pytest

from portal.changes.models import (
    ChangeHistory,
    ChangeRequest,
    ConflictAcknowledgement,
    change_tickets,
)
from portal.changes.setup_models import StandardTemplate
from portal.extensions import db
from portal.tickets.models import Ticket
from tests.factories import make_user, sign_in_client

from .test_service_desk import BAD_INPUT, HX, body, tables

PERIOD = "period=custom&start=2026-03-01&end=2026-03-31"
REPORT = "/reports/changes"


def at(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def change(requester, type_, risk, path, window, submitted=None, decided=None,  # noqa: ANN001,ANN201
           finished=None, template=None):  # fmt: skip
    """A change that went through the statuses in `path` (its last is where it stands),
    each step kept in its history; `window` is (start, end) in UTC."""
    row = ChangeRequest(
        type=type_,
        title=f"{type_} {risk} {window[0]}",
        risk=risk,
        status=path[-1],
        requester_id=requester.id,
        template_id=template,
        window_start=at(window[0]),
        window_end=at(window[1]),
        created_at=at("2026-02-01 09:00"),
        submitted_at=at(submitted),
        decided_at=at(decided),
        finished_at=at(finished),
    )
    db.session.add(row)
    db.session.flush()
    for old, new in zip(["draft", *path], path, strict=False):
        db.session.add(
            ChangeHistory(change_id=row.id, field="status", old_value=old, new_value=new)
        )
    return row


def ticket(requester, type_):  # noqa: ANN001,ANN201
    row = Ticket(subject=f"a {type_}", type=type_, requester_id=requester.id)
    db.session.add(row)
    db.session.flush()
    return row


def acknowledge(by, change_row, other, when):  # noqa: ANN001,ANN201
    db.session.add(
        ConflictAcknowledgement(
            change_id=change_row.id,
            other_change_id=other.id,
            window_start=change_row.window_start,
            window_end=change_row.window_end,
            other_window_start=other.window_start,
            other_window_end=other.window_end,
            services="Payments",
            acknowledged_by_id=by.id,
            created_at=at(when),
        )
    )


REVIEWED = ["submitted", "in_review", "approved", "scheduled", "implementing", "validating"]


@pytest.fixture
def data(ctx):  # noqa: ANN001,ANN201
    rita = make_user(role="requester", name="Rita Requester")
    admin = make_user(role="admin", name="Ann Admin")
    template = StandardTemplate(name="Rotate certificates", created_by_id=admin.id)
    db.session.add(template)
    db.session.flush()
    c = {}
    # Approved in 4 h, completed in its window.
    c[1] = change(rita, "normal", "low", [*REVIEWED, "completed"],
                  ("2026-03-05 10:00", "2026-03-05 12:00"), "2026-03-01 09:00",
                  "2026-03-01 13:00", "2026-03-05 12:00")  # fmt: skip
    # Approved in 25 h, failed (rolled back), then closed: a failure.
    c[2] = change(rita, "normal", "medium", [*REVIEWED, "failed", "closed"],
                  ("2026-03-10 10:00", "2026-03-10 11:00"), "2026-03-02 09:00",
                  "2026-03-03 10:00", "2026-03-10 11:00")  # fmt: skip
    # An emergency approved in 1 h, completed, then closed: a success.
    c[3] = change(rita, "emergency", "high", [*REVIEWED, "completed", "closed"],
                  ("2026-03-15 20:00", "2026-03-15 22:00"), "2026-03-15 18:00",
                  "2026-03-15 19:00", "2026-03-15 22:00")  # fmt: skip
    # Pre-approved from a template (no wait to count); its window starts at 23:30 Berlin
    # on the period's last day.
    c[4] = change(rita, "standard", "low", ["submitted", "approved", "scheduled"],
                  ("2026-03-31 21:30", "2026-03-31 23:30"), "2026-03-20 10:00",
                  "2026-03-20 10:00", template=template.id)  # fmt: skip
    # Rejected after 6 h.
    c[5] = change(rita, "normal", "high", ["submitted", "in_review", "rejected"],
                  ("2026-03-25 10:00", "2026-03-25 12:00"), "2026-03-24 10:00",
                  "2026-03-24 16:00")  # fmt: skip
    # Its window ends at midnight Berlin as March begins: outside the period.
    c[6] = change(rita, "normal", "low", ["submitted", "in_review"],
                  ("2026-02-28 22:00", "2026-02-28 23:00"), "2026-02-27 10:00")  # fmt: skip
    # Finished in February: outside every figure.
    c[7] = change(rita, "standard", "low", [*REVIEWED, "completed"],
                  ("2026-02-10 10:00", "2026-02-10 11:00"), "2026-02-09 10:00",
                  "2026-02-09 12:00", "2026-02-10 11:00")  # fmt: skip
    incidents = [ticket(rita, "incident") for _ in range(2)]
    links = [(c[2], incidents[0]), (c[3], incidents[0]), (c[3], incidents[1])]
    links.append((c[1], ticket(rita, "request")))
    db.session.execute(
        change_tickets.insert(), [{"change_id": x.id, "ticket_id": t.id} for x, t in links]
    )
    acknowledge(admin, c[3], c[2], "2026-03-14 10:00")
    acknowledge(admin, c[3], c[1], "2026-03-14 10:05")
    acknowledge(admin, c[1], c[7], "2026-02-10 09:00")
    db.session.commit()
    return {"changes": c, "rita": rita}


@pytest.fixture
def viewer(client, data):  # noqa: ANN001,ANN201
    user = make_user(role="agent", name="Viewer", timezone="Europe/Berlin")
    sign_in_client(client, user)
    return user


STATUS_ROWS = {"Rejected": ["0", "1", "0", "1"], "Scheduled": ["1", "0", "0", "1"],
               "Completed": ["0", "1", "0", "1"], "Closed": ["0", "1", "1", "2"]}  # fmt: skip
LABELS = ["Draft", "Submitted", "In review", "Approved", "Rejected", "Scheduled",
          "Implementing", "Validating", "Completed", "Failed (rolled back)", "Closed"]  # fmt: skip


def test_every_figure_matches_the_hand_worked_values(client, viewer):  # noqa: ANN001,ANN201
    response = client.get(f"{REPORT}?{PERIOD}")
    assert response.status_code == 200, response.text
    found = tables(response.text)
    assert found["by_status"][0] == ["Status", "Standard", "Normal", "Emergency", "Total"]
    assert body(found["by_status"]) == [
        [label, *STATUS_ROWS.get(label, ["0"] * 4)] for label in LABELS
    ] + [["All", "1", "3", "1", "5"]]
    assert body(found["by_risk"]) == [
        ["low", "1", "0", "1", "0", "0", "2"],
        ["medium", "0", "0", "0", "0", "1", "1"],
        ["high", "0", "1", "0", "0", "1", "2"],
        ["All", "1", "1", "1", "0", "2", "5"],
    ]
    # The closed changes count as what they closed from: c2 failed, c3 completed.
    assert body(found["success"]) == [
        ["standard", "0", "0", "—"],
        ["normal", "1", "1", "50.0"],
        ["emergency", "1", "0", "100.0"],
        ["All", "2", "1", "66.7"],
    ]
    assert body(found["emergency"]) == [["1", "5", "20.0"]]
    assert body(found["linked_incidents"]) == [
        ["standard", "1", "0", "0.0", "0"],
        ["normal", "3", "1", "33.3", "1"],
        ["emergency", "1", "1", "100.0", "2"],
    ]
    # Normal: 4, 6, 25 h → median 6, mean 35 / 3; all: 1, 4, 6, 25 → median 5, mean 9.
    assert body(found["approval_lead"]) == [
        ["standard", "0", "—", "—"],
        ["normal", "3", "6.0", "11.7"],
        ["emergency", "1", "1.0", "1.0"],
        ["All", "4", "5.0", "9.0"],
    ]
    assert body(found["conflicts"]) == [
        ["standard", "0", "0"],
        ["normal", "0", "0"],
        ["emergency", "2", "1"],
        ["All", "2", "1"],
    ]


def test_the_type_filter_narrows_the_figures(client, viewer):  # noqa: ANN001,ANN201
    found = tables(client.get(f"{REPORT}?{PERIOD}&type=normal").text)
    assert found["by_status"][0] == ["Status", "Normal", "Total"]
    assert body(found["by_status"])[-1] == ["All", "3", "3"]
    assert body(found["success"]) == [["normal", "1", "1", "50.0"], ["All", "1", "1", "50.0"]]
    assert body(found["approval_lead"])[-1] == ["All", "3", "6.0", "11.7"]
    # The emergency share ignores the type filter, as its definition says.
    assert body(found["emergency"]) == [["1", "5", "20.0"]]


def test_each_csv_holds_the_figures_its_page_shows(client, viewer):  # noqa: ANN001,ANN201
    found = tables(client.get(f"{REPORT}?{PERIOD}").text)
    assert len(found) == 7
    for key, table in found.items():
        response = client.get(f"{REPORT}.csv?{PERIOD}&figure={key}")
        assert response.status_code == 200
        assert response.headers["Content-Disposition"].startswith("attachment;")
        text = response.get_data().decode("utf-8")
        shown = [[cell.replace("—", "") for cell in row] for row in table]
        assert list(csv.reader(io.StringIO(text[1:], newline=""))) == shown, key


def test_a_linked_figure_counts_exactly_the_changes_its_list_shows(client, viewer, data):  # noqa: ANN001,ANN201
    c = data["changes"]
    html = client.get(f"{REPORT}?{PERIOD}").text
    links = re.findall(r'<a class="figure-link" href="([^"]+)">(\d+)</a>', html)
    # Status × type with totals (12 × 4), risk (4 × 5), emergency share (2), linked (3).
    assert len(links) == 48 + 20 + 2 + 3
    listed = {}
    for href, count in links:
        response = client.get(href.replace("&amp;", "&"), headers=HX)
        assert response.status_code == 200
        ids = {int(i) for i in re.findall(r'<td><a href="/changes/(\d+)">', response.text)}
        assert len(ids) == int(count), href
        listed[frozenset(href.split("?")[1].split("&amp;"))] = ids
    window = {"window_from=2026-03-01", "window_to=2026-03-31"}
    assert listed[frozenset({*window, "type=emergency"})] == {c[3].id}
    assert listed[frozenset(window)] == {c[i].id for i in (1, 2, 3, 4, 5)}
    assert listed[frozenset({*window, "status=closed"})] == {c[2].id, c[3].id}
    assert "cannot filter by linked tickets" in html
    assert "cannot filter by finish time" in html


@pytest.mark.parametrize(
    ("query", "message"),
    [pair for pair in BAD_INPUT if not pair[0].startswith(("team=", "priority=", "type="))]
    + [("type=incident", "Unknown type"), ("type=urgent", "Unknown type")],
)
def test_bad_input_gives_a_message_never_an_error(client, viewer, query, message):  # noqa: ANN001,ANN201
    for headers in ({}, HX):
        response = client.get(f"{REPORT}?{query}", headers=headers)
        assert response.status_code == 422
        assert message in response.text
        assert 'id="table-by_status"' in response.text
    assert client.get(f"{REPORT}.csv?{query}&figure=success").status_code == 422


def test_the_page_carries_the_tab_bar_and_inline_charts(client, viewer):  # noqa: ANN001,ANN201
    page = client.get(f"{REPORT}?{PERIOD}").text
    assert 'aria-current="page" href="/reports/changes?period=custom' in page
    assert 'href="/reports/service-desk?period=custom&amp;start=2026-03-01' in page
    svgs = re.findall(r"<svg.*?</svg>", page, re.S)
    assert len(svgs) == 5 and all("style=" not in svg for svg in svgs)
    desk = client.get(f"/reports/service-desk?{PERIOD}").text
    assert 'href="/reports/incidents?period=custom&amp;start=2026-03-01' in desk


def test_the_page_runs_a_fixed_number_of_queries(client, viewer, count_queries):  # noqa: ANN001,ANN201
    client.get(REPORT)
    counts = []
    for query in (PERIOD, "start=2021-01-01&end=2025-12-31", "type=emergency"):
        with count_queries() as counter:
            assert client.get(f"{REPORT}?{query}").status_code == 200
        counts.append(counter.count)
    # The signed-in session, then one query per figure.
    assert counts == [1 + 7] * 3


def test_a_requester_may_not_run_the_report(client, data):  # noqa: ANN001,ANN201
    sign_in_client(client, data["rita"])
    assert client.get(REPORT).status_code == 403
    assert client.get(f"{REPORT}.csv?figure=success").status_code == 403
