"""The ticket list around the results: saved views, bulk changes, and a page that asks
the database the same number of questions however many tickets it lists."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select

from portal.audits.models import AuditEvent
from portal.extensions import db
from portal.tickets import services
from portal.tickets.extra_models import SavedView
from portal.tickets.list_actions import BULK_LIMIT, MAX_VIEWS
from portal.tickets.models import Ticket, TicketChange
from portal.tickets.setup_models import Team
from tests.factories import make_user, sign_in_client

_HX = {"HX-Request": "true"}


def _listed(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'<td><a href="/tickets/(\d+)">', html)]


def _views(user) -> list[SavedView]:
    db.session.expire_all()
    return list(db.session.scalars(select(SavedView).where(SavedView.user_id == user.id)))


def _actions(action: str) -> list[AuditEvent]:
    return list(
        db.session.scalars(
            select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
        )
    )


def _changes(ticket: Ticket, field: str) -> list[TicketChange]:
    return list(
        db.session.scalars(
            select(TicketChange).where(
                TicketChange.ticket_id == ticket.id, TicketChange.field == field
            )
        )
    )


@pytest.fixture
def agent(ctx, client):
    user = make_user(role="agent", name="Ana Agent")
    sign_in_client(client, user)
    return user


@pytest.fixture
def requester(ctx):
    return make_user(role="requester", name="Rita Requester")


# -- saved views ------------------------------------------------------------------------------


def test_a_saved_view_is_listed_opens_its_filters_and_is_replaced_by_name(client, agent, requester):
    urgent = services.create_ticket(requester, "Core switch down", "", priority="critical")
    calm = services.create_ticket(requester, "New mouse please", "", priority="low")

    response = client.post(
        "/tickets/views", data={"name": "Urgent", "query": "priority=critical&status=open"}
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/tickets/?status=open&priority=critical"
    [view] = _views(agent)
    assert (view.name, view.query) == ("Urgent", "status=open&priority=critical")
    [saved] = _actions("ticket_view.saved")
    assert saved.actor_id == agent.id and saved.data["name"] == "Urgent"

    page = client.get("/tickets/").text
    assert 'href="/tickets/?status=open&amp;priority=critical">Urgent</a>' in page
    assert f'action="/tickets/views/{view.id}/delete"' in page
    assert 'data-confirm="Delete the saved view “Urgent”?"' in page
    assert 'id="save-view"' in page
    opened = client.get("/tickets/?status=open&priority=critical", headers=_HX).text
    assert _listed(opened) == [urgent.id] and calm.id not in _listed(opened)

    # The same name again replaces the view's filters.
    response = client.post("/tickets/views", data={"name": "Urgent", "query": "priority=low"})
    assert response.status_code == 302
    [view] = _views(agent)
    assert view.query == "priority=low"
    replaced = _actions("ticket_view.saved")[-1]
    assert replaced.data["before"] == {"query": "status=open&priority=critical"}


def test_only_recognised_filters_are_saved(client, agent):
    query = (
        "?status=open&evil=<script>&q=  printer%00 jam  &page=7&sort=bogus&team=abc"
        "&assignee=none&mine=on&javascript:alert(1)"
    )
    assert client.post("/tickets/views", data={"name": "Mine", "query": query}).status_code == 302
    [view] = _views(agent)
    assert view.query == "status=open&assignee=none&mine=1&q=printer+jam"
    page = client.get("/tickets/").text
    assert "<script>" not in page and "javascript:" not in page


def test_saving_shows_the_problem_at_the_name_field(client, agent):
    for name in ("", "   ", "x" * 81, "bad\x00name"):
        response = client.post("/tickets/views", data={"name": name, "query": "status=open"})
        assert response.status_code == 422, name
        assert 'id="name-error"' in response.text
        assert 'id="tickets-table"' in response.text or 'id="no-results"' in response.text
    fragment = client.post("/tickets/views", data={"name": ""}, headers=_HX)
    assert fragment.status_code == 422
    assert fragment.text.lstrip().startswith('<form class="row g-2 align-items-start')
    assert "Name the view." in fragment.text and "<html" not in fragment.text
    assert _views(agent) == [] and _actions("ticket_view.saved") == []


def test_the_number_of_saved_views_is_capped(client, agent):
    db.session.add_all(
        SavedView(user_id=agent.id, name=f"View {n}", query="") for n in range(MAX_VIEWS)
    )
    db.session.commit()
    response = client.post("/tickets/views", data={"name": "One more", "query": ""})
    assert response.status_code == 422 and "delete one first" in response.text
    # Replacing one by name is still fine.
    assert (
        client.post("/tickets/views", data={"name": "View 3", "query": "sla=breached"}).status_code
        == 302
    )


def test_a_view_is_deleted_by_its_owner_only(app, client, agent):
    client.post("/tickets/views", data={"name": "Breached", "query": "sla=breached"})
    [view] = _views(agent)
    view_id = view.id

    other = app.test_client()
    sign_in_client(other, make_user(role="agent"))
    assert other.post(f"/tickets/views/{view_id}/delete").status_code == 404
    assert "Breached" not in other.get("/tickets/").text
    assert _views(agent) == [view]

    response = client.post(f"/tickets/views/{view_id}/delete", data={"next": "status=open"})
    assert response.status_code == 302
    assert response.headers["Location"] == "/tickets/?status=open"
    assert _views(agent) == []
    [deleted] = _actions("ticket_view.deleted")
    assert deleted.target_id == str(view_id) and deleted.data["name"] == "Breached"
    assert client.post(f"/tickets/views/{view_id}/delete").status_code == 404
    assert client.post("/tickets/views/999999/delete").status_code == 404


def test_requesters_save_views_too(client, requester):
    sign_in_client(client, requester)
    assert (
        client.post("/tickets/views", data={"name": "Open", "query": "status=open"}).status_code
        == 302
    )
    page = client.get("/tickets/").text
    assert ">Open</a>" in page and 'id="bulk-form"' not in page


def test_the_list_shows_saved_views_as_they_change(client, agent):
    # The list keeps one's views in the shared cache: saving or deleting one shows at once.
    assert 'id="saved-views"' not in client.get("/tickets/").text
    client.post("/tickets/views", data={"name": "Breached", "query": "sla=breached"})
    assert ">Breached</a>" in client.get("/tickets/").text
    [view] = _views(agent)
    client.post(f"/tickets/views/{view.id}/delete")
    assert 'id="saved-views"' not in client.get("/tickets/").text


# -- list lines -------------------------------------------------------------------------------


def _line(html: str, ticket: Ticket) -> str:
    match = re.search(rf'<tr>\s*<td><input[^>]*value="{ticket.id}".*?</tr>', html, re.S)
    assert match, ticket.number
    return match.group()


def test_a_list_line_shows_the_ticket_as_its_page_does(client, agent, requester):
    incident = services.create_ticket(requester, "Core switch down", "", "incident", "critical")
    services.assign(incident, agent, agent)
    closed = services.create_ticket(requester, "New mouse please", "", priority="low")
    closed.status, closed.team_id = "closed", None
    db.session.commit()

    page = client.get("/tickets/").text
    line = _line(page, incident)
    assert f'<a href="/tickets/{incident.id}">{incident.number}</a>' in line
    assert '<span class="badge text-bg-danger">incident</span>' in line
    assert '<span class="badge text-bg-info">Assigned</span>' in line
    assert '<span class="badge text-bg-danger border">P0 (critical)</span>' in line
    assert f"<td>{incident.team.name}</td><td>Ana Agent</td>" in line
    assert '<span class="badge sla-on_track text-bg-success">on track</span>' in line
    due = incident.resolution_due_at.strftime("%Y-%m-%d %H:%M")
    assert f"<td>{due}</td>" in line

    line = _line(page, closed)
    assert "incident</span>" not in line
    assert '<span class="badge text-bg-light border">low</span>' in line
    assert "<td>—</td><td>—</td>" in line  # no team, nobody assigned
    assert '<span class="badge text-bg-secondary">Closed</span>' in line


def test_list_times_are_in_the_viewers_zone(app, client, requester):
    viewer = make_user(role="agent", timezone="Asia/Kolkata")  # UTC+05:30, no summer time
    sign_in_client(client, viewer)
    ticket = services.create_ticket(requester, "Printer jam", "")
    ticket.updated_at = ticket.updated_at.replace(year=2030, month=1, day=2, hour=23, minute=50)
    db.session.commit()
    assert "<td>2030-01-03 05:20</td>" in _line(client.get("/tickets/").text, ticket)


# -- bulk changes -----------------------------------------------------------------------------


def test_bulk_assign_changes_each_ticket_with_its_own_history(client, agent, requester):
    tickets = [services.create_ticket(requester, f"Ticket {n}", "") for n in range(3)]
    colleague = make_user(role="agent", name="Cole League")
    ids = [str(t.id) for t in tickets]

    response = client.post(
        "/tickets/bulk",
        data={
            "ids": ids,
            "action": "assign",
            "value": f"assign:{colleague.id}",
            "next": "q=ticket",
        },
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/tickets/?q=ticket"
    db.session.expire_all()
    for ticket in tickets:
        assert ticket.assignee_id == colleague.id and ticket.status == "assigned"
        [change] = _changes(ticket, "assignee")
        assert (change.new_value, change.actor_id) == ("Cole League", agent.id)
    events = _actions("ticket.assignee_changed")
    assert sorted(int(e.target_id) for e in events) == sorted(t.id for t in tickets)
    page = client.get(response.headers["Location"]).text
    assert "Assigned to Cole League: 3 updated." in page


def test_a_refused_move_is_reported_and_the_others_still_apply(client, agent, requester):
    resolved = [services.create_ticket(requester, f"Done {n}", "") for n in range(2)]
    for ticket in resolved:
        services.change_status(ticket, "resolved", agent)
    fresh = services.create_ticket(requester, "Still new", "")
    ids = [str(resolved[0].id), str(fresh.id), str(resolved[1].id), "999999"]

    response = client.post(
        "/tickets/bulk", data={"ids": ids, "action": "status", "value": "status:closed"}
    )
    assert response.status_code == 302
    db.session.expire_all()
    assert [t.status for t in resolved] == ["closed", "closed"]
    assert fresh.status == "new" and _changes(fresh, "status") == []
    page = client.get("/tickets/").text
    assert "Status closed: 2 updated, 2 skipped: " in page
    assert f"{fresh.number} (A ticket cannot move from new to closed." in page
    assert "T-999999 (no such ticket)" in page


def test_bulk_priority_and_team_and_unchanged_tickets(client, agent, requester):
    high = services.create_ticket(requester, "Already high", "", priority="high")
    medium = services.create_ticket(requester, "Medium", "", priority="medium")
    ids = [str(high.id), str(medium.id)]
    response = client.post(
        "/tickets/bulk", data={"ids": ids, "action": "priority", "value": "high"}
    )
    assert response.status_code == 302
    db.session.expire_all()
    assert medium.priority == "high" and len(_changes(medium, "priority")) == 1
    assert _changes(high, "priority") == []
    assert "Priority high: 1 updated, 1 unchanged." in client.get("/tickets/").text

    billing = db.session.scalar(select(Team).where(Team.name == "Billing"))
    response = client.post(
        "/tickets/bulk", data={"ids": ids, "action": "team", "value": f"team:{billing.id}"}
    )
    assert response.status_code == 302
    db.session.expire_all()
    assert high.team_id == medium.team_id == billing.id


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"action": "status", "value": "status:closed"}, "Choose at least one ticket."),
        ({"ids": ["abc", "-1", "0"], "action": "status", "value": "closed"}, "Choose at least"),
        ({"ids": ["1"], "action": "delete", "value": "x"}, "Choose one of the listed actions."),
        ({"ids": ["1"], "action": "status", "value": "status:bogus"}, "Choose one of the listed"),
        ({"ids": ["1"], "action": "team", "value": "assign:1"}, "Choose a value listed under"),
        (
            {"ids": ["1"], "action": "team", "value": "team:999999"},
            "Choose one of the listed teams",
        ),
        ({"ids": ["1"], "action": "assign", "value": "assign:999999"}, "Choose one of the listed"),
    ],
)
def test_bulk_requests_that_name_no_change_are_422(client, agent, requester, data, message):
    ticket = services.create_ticket(requester, "Untouched", "")
    data = {
        k: [str(ticket.id) if v == "1" else v for v in vs] if k == "ids" else vs
        for k, vs in data.items()
    }
    before = db.session.scalar(select(func.count()).select_from(TicketChange))
    response = client.post("/tickets/bulk", data=data)
    assert response.status_code == 422
    assert message in response.text
    assert db.session.scalar(select(func.count()).select_from(TicketChange)) == before


def test_a_requester_cannot_be_an_assignee(client, agent, requester):
    ticket = services.create_ticket(requester, "Untouched", "")
    response = client.post(
        "/tickets/bulk",
        data={"ids": [str(ticket.id)], "action": "assign", "value": f"assign:{requester.id}"},
    )
    assert response.status_code == 422 and "Choose one of the listed people." in response.text


def test_more_ids_than_the_cap_is_422_and_changes_nothing(client, agent, requester):
    ticket = services.create_ticket(requester, "Untouched", "")
    ids = [str(ticket.id)] + [str(n) for n in range(100_000, 100_000 + BULK_LIMIT)]
    response = client.post("/tickets/bulk", data={"ids": ids, "action": "priority", "value": "low"})
    assert response.status_code == 422
    assert f"Choose at most {BULK_LIMIT} tickets at a time" in response.text
    db.session.expire_all()
    assert ticket.priority == "medium"


@pytest.mark.parametrize("role", ["requester", "approver", "auditor"])
def test_only_those_who_work_tickets_change_them_in_bulk(app, client, ctx, role):
    owner = make_user(role="requester")
    ticket = services.create_ticket(owner, "Untouched", "")
    user = owner if role == "requester" else make_user(role=role)
    sign_in_client(client, user)
    response = client.post(
        "/tickets/bulk", data={"ids": [str(ticket.id)], "action": "priority", "value": "low"}
    )
    assert response.status_code == 403
    db.session.expire_all()
    assert ticket.priority == "medium"
    assert 'id="bulk-form"' not in client.get("/tickets/").text


@pytest.mark.parametrize(
    "next_value", ["https://evil.example/", "//evil.example", "/\\evil", "\r\nX: y"]
)
def test_the_way_back_is_always_the_local_list(client, agent, requester, next_value):
    ticket = services.create_ticket(requester, "Anything", "")
    response = client.post(
        "/tickets/bulk",
        data={"ids": [str(ticket.id)], "action": "priority", "value": "low", "next": next_value},
    )
    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    assert (location.scheme, location.netloc, location.path) == ("", "", "/tickets/")


def test_htmx_bulk_post_navigates_with_hx_redirect(client, agent, requester):
    ticket = services.create_ticket(requester, "Anything", "")
    response = client.post(
        "/tickets/bulk",
        data={"ids": [str(ticket.id)], "action": "priority", "value": "low", "next": "sort=oldest"},
        headers=_HX,
    )
    assert response.status_code == 200
    assert response.headers["HX-Redirect"] == "/tickets/?sort=oldest"


# -- a fixed number of queries ----------------------------------------------------------------


def _count(client, count_queries, url, headers=None) -> int:
    with count_queries() as counter:
        response = client.get(url, headers=headers or {})
    assert response.status_code == 200
    return counter.count


@pytest.mark.parametrize(
    "url", ["/tickets/", "/tickets/?q=ticket", "/tickets/?q=ticket&sort=oldest"]
)
@pytest.mark.parametrize("hx", [False, True], ids=["page", "htmx"])
def test_the_list_asks_the_same_number_of_queries_for_3_or_30_tickets(
    app, client, ctx, count_queries, settings, url, hx
):
    settings(SHARED_CACHE_SECONDS=0)  # the worst case: the counts asked every time
    agent = make_user(role="agent")
    requester = make_user(role="requester")
    others = [make_user(role="agent") for _ in range(3)]
    teams = list(db.session.scalars(select(Team)))
    db.session.add_all(
        SavedView(user_id=agent.id, name=f"View {n}", query="status=open") for n in range(3)
    )
    db.session.commit()
    agent_client, requester_client = client, app.test_client()
    sign_in_client(agent_client, agent)
    sign_in_client(requester_client, requester)
    headers = _HX if hx else {}

    def add(n: int) -> None:
        for i in range(n):
            ticket = services.create_ticket(requester, f"Ticket {i} printer", "description")
            # Different assignees, teams and categories: each could cost a query if lazy.
            services.assign(ticket, others[i % 3], agent)
            services.update_fields(ticket, agent, team=teams[i % len(teams)])

    add(3)
    agent_few = _count(agent_client, count_queries, url, headers)
    requester_few = _count(requester_client, count_queries, url, headers)
    page = agent_client.get(url, headers=headers).text
    assert len(_listed(page)) == 3 and page.count('name="ids"') == 3
    assert ("View 1" in page) and ('id="bulk-form"' in page)

    add(27)
    assert len(_listed(agent_client.get(url, headers=headers).text)) == 25
    assert _count(agent_client, count_queries, url, headers) == agent_few
    assert _count(requester_client, count_queries, url, headers) == requester_few
