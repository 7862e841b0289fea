"""Incidents: the review a P0/P1 needs before it closes, its action items, and the banner
that shows open major incidents on every page."""

import re
from datetime import date, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from portal.audits.models import AuditEvent
from portal.errors import Forbidden
from portal.extensions import db
from portal.tickets import incidents
from portal.tickets.extra_models import ActionItem, IncidentReview
from portal.tickets.models import Ticket
from portal.tickets.services import create_ticket
from tests.factories import make_user, sign_in_client

NEXT_WEEK = (date.today() + timedelta(days=7)).isoformat()


def _incident(requester=None, priority="high", subject="Checkout is down"):
    requester = requester or make_user(role="requester")
    return create_ticket(
        requester, subject, "Customers see 502 errors", type_="incident", priority=priority
    )


def _move(client, ticket, status):
    return client.post(f"/tickets/{ticket.id}/status", data={"status": status})


def _review(client, ticket, timeline="10:02 alerts fired", root_cause="An expired certificate"):
    return client.post(
        f"/tickets/{ticket.id}/review",
        data={"review-timeline": timeline, "review-root_cause": root_cause},
    )


def _add_item(client, ticket, owner, due=NEXT_WEEK, description="Alert on certificate expiry"):
    return client.post(
        f"/tickets/{ticket.id}/review/actions",
        data={"action-description": description, "action-owner": owner.id, "action-due_on": due},
    )


def _actions():
    return [e.action for e in db.session.scalars(select(AuditEvent).order_by(AuditEvent.id))]


def _status(ticket):
    db.session.expire_all()
    return db.session.get(Ticket, ticket.id).status


def test_p1_incident_closes_only_with_a_complete_review(client, as_role, ctx):
    agent = as_role("agent")
    incident = _incident(priority="high")
    assert _move(client, incident, "resolved").status_code == 302

    refused = _move(client, incident, "closed")
    assert refused.status_code == 409
    assert "P1 incident closes only after its post-incident review is complete" in refused.text
    assert "Missing: a timeline, a root cause, at least one action item." in refused.text
    page = client.get(f"/tickets/{incident.id}").text
    assert 'id="review-missing"' in page and "cannot be closed yet" in page

    assert _review(client, incident).status_code == 302
    refused = _move(client, incident, "closed")
    assert refused.status_code == 409 and "Missing: at least one action item." in refused.text

    assert _add_item(client, incident, agent).status_code == 302
    assert _move(client, incident, "closed").status_code == 302
    assert _status(incident) == "closed"

    page = client.get(f"/tickets/{incident.id}").text
    assert "An expired certificate" in page and "Alert on certificate expiry" in page
    assert agent.name in page and NEXT_WEEK in page and 'id="review-missing"' not in page
    assert {"incident.review_saved", "incident.action_item_added"} <= set(_actions())
    saved = db.session.scalar(
        select(AuditEvent).where(AuditEvent.action == "incident.review_saved")
    )
    assert saved.target_id == str(incident.id)
    assert saved.data["after"] == {
        "timeline": "10:02 alerts fired",
        "root_cause": "An expired certificate",
    }
    # A closed incident's review is what it was closed on: changing it means reopening.
    locked = _review(client, incident, root_cause="Something else")
    assert locked.status_code == 409 and "reopen it" in locked.text


def test_review_edits_keep_before_and_after(client, as_role, ctx):
    as_role("agent")
    incident = _incident(priority="critical")
    _review(client, incident, timeline="draft", root_cause="")
    assert _review(client, incident, timeline="draft", root_cause="DNS").status_code == 302
    edits = db.session.scalars(
        select(AuditEvent).where(AuditEvent.action == "incident.review_saved")
    ).all()
    assert [e.data["created"] for e in edits] == [True, False]
    assert edits[1].data["before"] == {"root_cause": ""}
    assert edits[1].data["after"] == {"root_cause": "DNS"}
    # Saving the same text again changes nothing and records nothing.
    _review(client, incident, timeline="draft", root_cause="DNS")
    assert _actions().count("incident.review_saved") == 2


@pytest.mark.parametrize(("type_", "priority"), [("incident", "medium"), ("request", "critical")])
def test_minor_incidents_and_requests_close_without_a_review(client, as_role, ctx, type_, priority):
    as_role("agent")
    ticket = create_ticket(make_user(), "Slow page", "x", type_=type_, priority=priority)
    assert _move(client, ticket, "resolved").status_code == 302
    assert _move(client, ticket, "closed").status_code == 302
    assert _status(ticket) == "closed"


def test_review_and_markdown_are_sanitised(client, as_role, ctx):
    as_role("agent")
    incident = _incident()
    _review(client, incident, "**10:02** <script>alert(1)</script>", "[x](javascript:y)")
    page = client.get(f"/tickets/{incident.id}").text
    assert "<strong>10:02</strong>" in page
    assert "<script>alert(1)" not in page and 'href="javascript' not in page


def test_banner_shows_open_major_incidents_on_every_page(app, client, as_role, ctx):
    as_role("agent")
    p0 = _incident(priority="critical", subject="Payments are down")
    _incident(priority="medium", subject="A slow report")
    for path in ("/", "/tickets/", f"/tickets/{p0.id}"):
        page = client.get(path).text
        assert 'id="incident-banner"' in page, path
        assert "P0 incident open:" in page and p0.number in page and "Payments are down" in page
        assert "A slow report" not in page.split('id="incident-banner"')[1].split("</section>")[0]

    assert _move(client, p0, "resolved").status_code == 302
    assert 'id="incident-banner"' not in client.get("/").text

    # Signed out: the sign-in page renders, without a banner.
    signed_out = app.test_client().get("/login")
    assert signed_out.status_code == 200 and 'id="incident-banner"' not in signed_out.text


def test_requesters_see_only_their_own_incidents_in_the_banner(app, client, as_role, ctx):
    mine = _incident(as_role("requester"), priority="high", subject="My VPN is down")
    theirs = _incident(priority="critical", subject="Their database is down")
    page = client.get("/").text
    assert "P1 incident open:" in page and mine.number in page
    assert theirs.number not in page and "Their database" not in page
    agent = app.test_client()
    sign_in_client(agent, make_user(role="agent"))
    assert theirs.number in agent.get("/").text


def test_banner_is_one_query_and_lists_p0_first(client, as_role, ctx, count_queries, settings):
    settings(SHARED_CACHE_SECONDS=0)  # asked every time, as when a ticket just changed
    as_role("auditor")
    client.get("/")
    with count_queries() as none_open:
        client.get("/")
    for n in range(6):
        _incident(priority="high", subject=f"Degraded service {n}")
    p0 = _incident(priority="critical", subject="Everything is down")
    _incident(priority="high", subject="Newest P1")
    with count_queries() as many_open:
        page = client.get("/").text
    assert many_open.count == none_open.count
    banner = page.split('id="incident-banner"')[1].split("</section>")[0]
    assert banner.count("incident-banner-item") == incidents.BANNER_LIMIT
    assert banner.index(p0.number) < banner.index("Newest P1")
    assert "All open incidents" in banner


def test_a_broken_banner_never_breaks_the_page(client, as_role, ctx, monkeypatch):
    as_role("agent")
    _incident(priority="critical")

    def broken(_user):
        raise OperationalError("SELECT", {}, Exception("connection lost"))

    monkeypatch.setattr(incidents, "open_major_incidents", broken)
    page = client.get("/")
    assert page.status_code == 200 and 'id="incident-banner"' not in page.text


def test_action_item_becomes_a_ticket_once_and_links_both_ways(client, as_role, ctx):
    agent = as_role("agent")
    incident = _incident()
    _add_item(client, incident, agent, description="Rotate certificates automatically")
    item = db.session.scalar(select(ActionItem))
    url = f"/tickets/{incident.id}/review/actions/{item.id}/ticket"

    assert client.post(url).status_code == 302
    db.session.expire_all()
    follow_up = db.session.get(Ticket, db.session.get(ActionItem, item.id).ticket_id)
    assert follow_up.subject == f"[{incident.number}] Rotate certificates automatically"
    assert follow_up.requester_id == agent.id and follow_up.type == "request"

    again = client.post(url)
    assert again.status_code == 409 and f"already ticket {follow_up.number}" in again.text
    assert db.session.scalar(select(db.func.count()).select_from(Ticket)) == 2

    incident_page = client.get(f"/tickets/{incident.id}").text
    assert f'href="/tickets/{follow_up.id}"' in incident_page
    assert f"T-{follow_up.id:06d}" in incident_page
    follow_up_page = client.get(f"/tickets/{follow_up.id}").text
    assert f"/tickets/{incident.id}" in follow_up_page and incident.number in follow_up_page
    actions = _actions()
    assert actions.index("ticket.created", 1) < actions.index("incident.action_item_ticketed")


def test_action_item_is_marked_done_once(client, as_role, ctx):
    agent = as_role("agent")
    incident = _incident()
    _add_item(client, incident, agent)
    item = db.session.scalar(select(ActionItem))
    url = f"/tickets/{incident.id}/review/actions/{item.id}/done"
    assert client.post(url).status_code == 302
    assert 'badge text-bg-success">done' in client.get(f"/tickets/{incident.id}").text
    assert client.post(url).status_code == 409
    assert _actions().count("incident.action_item_done") == 1


@pytest.mark.parametrize("role", ["requester", "approver", "auditor"])
def test_only_agents_and_admins_write_reviews(client, as_role, ctx, role):
    user = as_role(role)
    incident = _incident(user if role == "requester" else None)
    assert _review(client, incident).status_code == 403
    assert _add_item(client, incident, user).status_code == 403
    page = client.get(f"/tickets/{incident.id}")
    assert page.status_code == 200 and 'id="incident-review"' in page.text
    assert 'id="review-form"' not in page.text and 'id="action-item-form"' not in page.text
    with pytest.raises(Forbidden):
        incidents.save_review(incident, user, "t", "r")
    assert db.session.scalar(select(IncidentReview)) is None


def test_admins_write_reviews(client, as_role, ctx):
    admin = as_role("admin")
    incident = _incident()
    assert _review(client, incident).status_code == 302
    assert _add_item(client, incident, admin).status_code == 302


def _bad(as_role, htmx=False):
    agent = as_role("agent")
    incident = _incident()
    headers = {"HX-Request": "true"} if htmx else {}
    return agent, incident, headers


@pytest.mark.parametrize("htmx", [False, True], ids=["page", "htmx"])
def test_bad_review_input_is_422_at_the_field(client, as_role, ctx, htmx):
    _, incident, headers = _bad(as_role, htmx)
    before = len(_actions())
    cases = [
        (
            {"review-timeline": " ", "review-root_cause": ""},
            "review-timeline",
            "Write the timeline",
        ),
        ({"review-timeline": "a\x00b", "review-root_cause": "x"}, "review-timeline", "characters"),
        ({"review-timeline": "x", "review-root_cause": "y" * 20_001}, "review-root_cause", "20000"),
    ]
    for data, field, message in cases:
        response = client.post(f"/tickets/{incident.id}/review", data=data, headers=headers)
        assert response.status_code == 422, data
        assert f'id="{field}-error"' in response.text and message in response.text
        assert ("<html" in response.text) is not htmx
        assert 'id="incident-review"' in response.text
    assert len(_actions()) == before and db.session.scalar(select(IncidentReview)) is None


@pytest.mark.parametrize("htmx", [False, True], ids=["page", "htmx"])
def test_bad_action_item_input_is_422_at_the_field(client, as_role, ctx, htmx):
    agent, incident, headers = _bad(as_role, htmx)
    gone = make_user(role="agent", is_active=False)
    yesterday = (date.today() - timedelta(days=2)).isoformat()
    good = {"action-description": "Fix it", "action-owner": agent.id, "action-due_on": NEXT_WEEK}
    cases = [
        ({"action-due_on": yesterday}, "action-due_on", "cannot be in the past"),
        ({"action-due_on": "next week"}, "action-due_on", "YYYY-MM-DD"),
        ({"action-due_on": ""}, "action-due_on", "Choose a due date"),
        ({"action-owner": gone.id}, "action-owner", "active person"),
        ({"action-owner": "9" * 25}, "action-owner", "active person"),
        ({"action-owner": ""}, "action-owner", "active person"),
        ({"action-description": " "}, "action-description", "Say what needs doing"),
        ({"action-description": "x" * 501}, "action-description", "at most 500"),
    ]
    before = len(_actions())
    for change, field, message in cases:
        response = client.post(
            f"/tickets/{incident.id}/review/actions", data={**good, **change}, headers=headers
        )
        assert response.status_code == 422, change
        assert f'id="{field}-error"' in response.text and message in response.text, change
    assert len(_actions()) == before and db.session.scalar(select(ActionItem)) is None


def test_review_routes_on_other_tickets_are_409_or_404(client, as_role, ctx):
    agent = as_role("agent")
    request = create_ticket(make_user(), "Printer jams", "Every page")
    assert _review(client, request).status_code == 409
    assert _add_item(client, request, agent).status_code == 409
    incident, other = _incident(), _incident()
    _add_item(client, other, agent)
    item = db.session.scalar(select(ActionItem))
    for ticket in (request, incident):
        for action in ("done", "ticket"):
            url = f"/tickets/{ticket.id}/review/actions/{item.id}/{action}"
            assert client.post(url).status_code == 404
    assert client.post(f"/tickets/{other.id}/review/actions/{2**40}/done").status_code == 404


def test_review_forms_carry_their_csrf_token(client, as_role, ctx, csrf):
    agent = as_role("agent")
    incident = _incident()
    page = client.get(f"/tickets/{incident.id}").text
    tokens = dict(
        re.findall(r'name="(review|action)-csrf_token" type="hidden" value="([^"]+)"', page)
    )
    assert set(tokens) == {"review", "action"}
    assert _review(client, incident).status_code == 400
    saved = client.post(
        f"/tickets/{incident.id}/review",
        data={
            "review-csrf_token": tokens["review"],
            "review-timeline": "t",
            "review-root_cause": "",
        },
    )
    assert saved.status_code == 302
    added = client.post(
        f"/tickets/{incident.id}/review/actions",
        data={
            "action-csrf_token": tokens["action"],
            "action-description": "Page the on-call sooner",
            "action-owner": agent.id,
            "action-due_on": NEXT_WEEK,
        },
    )
    assert added.status_code == 302
