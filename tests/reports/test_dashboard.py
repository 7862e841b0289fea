"""The home page's panels: each role sees its own, each loads after the page and
refreshes itself, each answers in a fixed number of queries."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from portal.changes import approvals
from portal.extensions import db
from portal.reports import dashboard
from portal.tickets import services as tickets
from portal.timeutil import utcnow
from tests.changes.helpers import later, make_change, scheduled_change
from tests.factories import make_user, sign_in_client

_HX = {"HX-Request": "true"}


def _panels(html: str) -> list[str]:
    return re.findall(r'hx-get="/reports/panels/(\w+)" hx-trigger="load, every 60s"', html)


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        ("agent", ["my_tickets", "major_incidents"]),
        (
            "approver",
            [
                "my_approvals",
                "major_incidents",
                "sla_week",
                "backlog_trend",
                "week_changes",
                "running_exports",
            ],
        ),
        (
            "admin",
            [
                "my_tickets",
                "my_approvals",
                "major_incidents",
                "sla_week",
                "backlog_trend",
                "week_changes",
                "running_exports",
            ],
        ),
        (
            "auditor",
            ["major_incidents", "sla_week", "backlog_trend", "week_changes", "running_exports"],
        ),
        ("requester", []),
    ],
)
def test_each_role_gets_its_panels_loaded_after_the_page(client, as_role, role, expected):
    as_role(role)
    html = client.get("/").text
    assert _panels(html) == expected
    for name in dashboard.PANELS:
        status = client.get(f"/reports/panels/{name}", headers=_HX).status_code
        assert status == (200 if name in expected else 403), name
    assert client.get("/reports/panels/nope").status_code == 404


def test_an_agents_tickets_next_to_breach_first(client, ctx):
    agent = make_user(role="agent")
    requester = make_user(role="requester")
    late = tickets.create_ticket(requester, "Late one", "d", priority="low")
    soon = tickets.create_ticket(requester, "Soon one", "d", priority="critical")
    calm = tickets.create_ticket(requester, "Calm one", "d", priority="low")
    for ticket in (late, soon, calm):
        tickets.assign(ticket, agent, agent)
    late.sla_state, late.resolution_due_at = "breached", utcnow() - timedelta(hours=1)
    calm.resolution_due_at = utcnow() + timedelta(days=6)
    db.session.commit()
    sign_in_client(client, agent)
    html = client.get("/reports/panels/my_tickets", headers=_HX).text
    assert "<html" not in html
    order = re.findall(r"T-\d{6}</a> (\w+ one)", html)
    assert order == ["Late one", "Soon one", "Calm one"]
    assert '<span data-state="breached">1</span>' in html
    assert f"assignee={agent.id}" in html


def test_an_approver_sees_what_waits_for_their_vote(client, ctx):
    approver = make_user(role="approver")
    change = make_change(impact=2, likelihood=2, title="Move the mail server")
    approvals.submit(change, change.requester)
    sign_in_client(client, approver)
    html = client.get("/reports/panels/my_approvals", headers=_HX).text
    assert '<strong id="approvals-waiting">1</strong>' in html
    assert "Move the mail server" in html


def test_major_incidents_and_this_weeks_changes(client, ctx):
    requester = make_user(role="requester")
    tickets.create_ticket(requester, "Mail is down", "d", type_="incident", priority="critical")
    tickets.create_ticket(requester, "Slow wiki", "d", type_="incident", priority="low")
    start = utcnow() + timedelta(hours=1)
    scheduled_change(start, start + timedelta(hours=1), title="Patch the firewall")
    scheduled_change(later(30), later(30, 3), title="Next month's change")
    sign_in_client(client, make_user(role="admin"))
    html = client.get("/reports/panels/major_incidents", headers=_HX).text
    assert "Mail is down" in html and "Slow wiki" not in html
    html = client.get("/reports/panels/week_changes", headers=_HX).text
    # Within this week unless the hour crosses into next Monday.
    if dashboard.week_start(make_user(role="admin")) + timedelta(days=7) > start:
        assert "Patch the firewall" in html
    assert "Next month&#39;s change" not in html and "Next month's change" not in html


def test_sla_compliance_this_week_against_last_week(client, ctx):
    requester = make_user(role="requester")
    admin = make_user(role="admin")
    monday = dashboard.week_start(admin)
    made = [tickets.create_ticket(requester, f"T {i}", "d") for i in range(5)]
    # This week: 2 of 3 first responses met; last week: 1 of 2 resolutions met.
    for ticket, state in zip(made[:3], ("met", "met", "breached"), strict=True):
        ticket.first_response_at, ticket.response_state = monday + timedelta(minutes=5), state
    for ticket, state in zip(made[3:], ("met", "breached"), strict=True):
        ticket.resolved_at = monday - timedelta(days=2)
        ticket.resolution_state = state
        ticket.first_response_at, ticket.response_state = None, "on_track"
    db.session.commit()
    figures = dashboard.sla_week(admin)["weeks"]
    assert figures["this"]["response"] == 66.7
    assert figures["last"]["resolution"] == 50.0
    assert figures["this"]["resolution"] is None
    sign_in_client(client, admin)
    html = client.get("/reports/panels/sla_week", headers=_HX).text
    assert '<td data-week="this" data-clock="response">66.7 %</td>' in html


def test_backlog_trend_works_back_from_today(client, ctx):
    requester = make_user(role="requester")
    agent = make_user(role="agent")
    admin = make_user(role="admin")
    old = tickets.create_ticket(requester, "Old", "d")
    old.created_at = utcnow() - timedelta(days=20)
    fixed = tickets.create_ticket(requester, "Fixed", "d")
    fixed.created_at = utcnow() - timedelta(days=20)
    db.session.commit()
    tickets.assign(fixed, agent, agent)
    tickets.change_status(fixed, "resolved", agent)
    fixed.resolved_at = utcnow() - timedelta(days=3)
    tickets.create_ticket(requester, "New", "d")
    db.session.commit()
    data = dashboard.backlog_trend(admin)
    assert data["open_now"] == 2
    points = dict(tuple(point) for point in data["points"])
    days = sorted(points)
    assert len(days) == dashboard.TREND_DAYS
    assert points[days[0]] == 2  # Old and Fixed open; New not filed yet
    assert points[days[-1]] == 2  # Old and New


def test_each_panel_runs_a_fixed_number_of_queries(client, ctx, count_queries):
    admin = make_user(role="admin")
    requester = make_user(role="requester")
    sign_in_client(client, admin)
    seen = {}
    for size in (1, 6):
        for i in range(size):
            tickets.assign(tickets.create_ticket(requester, f"T{size}-{i}", "d"), admin, admin)
        for name in dashboard.PANELS:
            with count_queries() as n:
                assert client.get(f"/reports/panels/{name}", headers=_HX).status_code == 200
            seen.setdefault(name, set()).add(n.count)
    assert all(len(counts) == 1 for counts in seen.values()), seen
