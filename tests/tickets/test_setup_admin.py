"""Admins run the help desk's setup; changes are audited and re-time open tickets."""

from datetime import date

import pytest

from portal.audits.models import AuditEvent
from portal.extensions import db
from portal.tickets import services
from portal.tickets.models import SlaEvent, Ticket
from portal.tickets.setup_models import (
    Category,
    Holiday,
    RoutingRule,
    SlaCalendar,
    SlaPolicy,
    Team,
)
from tests.conftest import csrf_token_from
from tests.factories import make_user


def _actions():
    return {e.action for e in db.session.scalars(db.select(AuditEvent))}


def _team(name):
    return db.session.scalar(db.select(Team).where(Team.name == name))


def _category(name):
    return db.session.scalar(db.select(Category).where(Category.name == name))


def _events(action):
    return list(db.session.scalars(db.select(AuditEvent).where(AuditEvent.action == action)))


def test_only_admins_open_the_setup(client, as_role):
    as_role("agent")
    for path in (
        "/tickets/setup/teams",
        "/tickets/setup/routing",
        "/tickets/setup/sla",
        "/tickets/setup/categories",
    ):
        assert client.get(path).status_code == 403


def test_pages_render_for_admins(client, as_role):
    as_role("admin")
    for path, text in (
        ("/tickets/setup/teams", "General support"),
        ("/tickets/setup/routing", "Sign-in and access"),
        ("/tickets/setup/categories", "Access and sign-in"),
        ("/tickets/setup/sla", "Business hours"),
    ):
        page = client.get(path)
        assert page.status_code == 200 and text in page.text, path


def test_teams_members_lead_and_escalation_level(client, as_role):
    as_role("admin")
    assert client.post("/tickets/setup/teams", data={"name": "Network"}).status_code == 302
    dup = client.post("/tickets/setup/teams", data={"name": "network"})
    assert dup.status_code == 422 and "exists already" in dup.text
    network = _team("Network")
    agent = make_user(role="agent", name="Nia Network")
    url = f"/tickets/setup/teams/{network.id}"
    assert client.post(f"{url}/members", data={"user": agent.id}).status_code == 302
    taken = client.post(url, data={"name": "Network", "lead": agent.id, "escalation_level": "L2"})
    assert taken.status_code == 422 and "takes L2 escalations already" in taken.text
    ok = client.post(url, data={"name": "Network", "lead": agent.id, "escalation_level": ""})
    assert ok.status_code == 302
    db.session.refresh(network)
    assert network.lead_id == agent.id and [m.id for m in network.members] == [agent.id]
    assert client.post(f"{url}/members/{agent.id}/remove").status_code == 302
    assert {
        "team.created",
        "team.member_added",
        "team.updated",
        "team.member_removed",
    } <= _actions()
    assert client.post(url, data={"name": "Network", "lead": "999999"}).status_code == 422


def test_routing_rules_are_ordered_and_validated(client, as_role):
    as_role("admin")
    technical = _team("Technical")
    bad = client.post(
        "/tickets/setup/routing",
        data={
            "name": "Broken",
            "match": "(unclosed",
            "is_regex": "y",
            "team": technical.id,
            "category": "",
            "priority": "",
            "is_active": "y",
        },
    )
    assert bad.status_code == 422 and "not valid" in bad.text
    assert (
        client.post(
            "/tickets/setup/routing",
            data={
                "name": "Printers",
                "match": "printer toner",
                "team": technical.id,
                "category": "",
                "priority": "low",
                "is_active": "y",
            },
        ).status_code
        == 302
    )
    rule = db.session.scalar(db.select(RoutingRule).where(RoutingRule.name == "Printers"))
    ticket = services.create_ticket(make_user(), "The printer is out of toner", "")
    assert (ticket.team_id, ticket.priority) == (technical.id, "low")
    # Moving a rule up changes which rule wins.
    before = [
        r.id for r in db.session.scalars(db.select(RoutingRule).order_by(RoutingRule.position))
    ]
    assert client.post(f"/tickets/setup/routing/{rule.id}/move/up").status_code == 302
    after = [
        r.id for r in db.session.scalars(db.select(RoutingRule).order_by(RoutingRule.position))
    ]
    assert after.index(rule.id) == before.index(rule.id) - 1
    first = after[0]
    assert client.post(f"/tickets/setup/routing/{first}/move/up").status_code == 409
    assert client.post(f"/tickets/setup/routing/{first}/move/sideways").status_code == 409
    assert {"routing_rule.created", "routing_rule.moved"} <= _actions()


def test_policy_change_retimes_open_tickets_of_that_priority(client, as_role):
    as_role("admin")
    ticket = services.create_ticket(make_user(), "Slow page", "", priority="high")
    other = services.create_ticket(make_user(), "Slow other page", "", priority="low")
    policy = db.session.scalar(db.select(SlaPolicy).where(SlaPolicy.priority == "high"))
    response = client.post(
        f"/tickets/setup/sla/policies/{policy.id}",
        data={
            f"p{policy.id}-response_minutes": "30",
            f"p{policy.id}-resolution_minutes": "600",
            f"p{policy.id}-calendar": policy.calendar_id,
        },
    )
    assert response.status_code == 302
    targets = [
        (e.clock, e.target_seconds, e.note)
        for e in db.session.scalars(
            db.select(SlaEvent).where(SlaEvent.ticket_id == ticket.id, SlaEvent.kind == "target")
        )
    ]
    assert sorted(targets) == [
        ("resolution", 36000, "policy changed"),
        ("response", 1800, "policy changed"),
    ]
    assert not db.session.scalars(
        db.select(SlaEvent).where(SlaEvent.ticket_id == other.id, SlaEvent.kind == "target")
    ).all()
    db.session.refresh(ticket)
    assert round((ticket.response_due_at - ticket.created_at).total_seconds() / 60) == 30
    assert "sla_policy.updated" in _actions()
    invalid = client.post(
        f"/tickets/setup/sla/policies/{policy.id}",
        data={
            f"p{policy.id}-response_minutes": "900",
            f"p{policy.id}-resolution_minutes": "60",
            f"p{policy.id}-calendar": policy.calendar_id,
        },
    )
    assert invalid.status_code == 422 and "response comes before" in invalid.text


def test_calendar_and_holidays(client, as_role):
    as_role("admin")
    calendar = db.session.scalar(db.select(SlaCalendar).where(SlaCalendar.kind == "business"))
    c = f"c{calendar.id}"
    bad_zone = client.post(
        f"/tickets/setup/sla/calendars/{calendar.id}",
        data={
            f"{c}-name": calendar.name,
            f"{c}-kind": "business",
            f"{c}-timezone": "Mars/Base",
            f"{c}-weekdays": ["0", "1"],
            f"{c}-day_start": "08:00",
            f"{c}-day_end": "16:00",
        },
    )
    assert bad_zone.status_code == 422 and "time zone" in bad_zone.text
    ok = client.post(
        f"/tickets/setup/sla/calendars/{calendar.id}",
        data={
            f"{c}-name": calendar.name,
            f"{c}-kind": "business",
            f"{c}-timezone": "Europe/Berlin",
            f"{c}-weekdays": ["0", "1", "2", "3"],
            f"{c}-day_start": "08:00",
            f"{c}-day_end": "16:00",
        },
    )
    assert ok.status_code == 302
    db.session.refresh(calendar)
    assert (calendar.timezone, calendar.weekdays) == ("Europe/Berlin", "0,1,2,3")
    h = f"h{calendar.id}"
    assert (
        client.post(
            f"/tickets/setup/sla/calendars/{calendar.id}/holidays",
            data={f"{h}-day": "2026-12-25", f"{h}-name": "Christmas"},
        ).status_code
        == 302
    )
    again = client.post(
        f"/tickets/setup/sla/calendars/{calendar.id}/holidays",
        data={f"{h}-day": "2026-12-25", f"{h}-name": "Again"},
    )
    assert again.status_code == 422 and "a holiday already" in again.text
    holiday = db.session.scalar(db.select(Holiday))
    assert holiday.day == date(2026, 12, 25)
    assert client.post(f"/tickets/setup/sla/holidays/{holiday.id}/remove").status_code == 302
    assert {
        "sla_calendar.updated",
        "sla_calendar.holiday_added",
        "sla_calendar.holiday_removed",
    } <= _actions()
    assert db.session.scalar(db.select(db.func.count()).select_from(Ticket)) == 0


def test_admin_edits_a_category(client, as_role):
    as_role("admin")
    category = _category("Access and sign-in")
    url = f"/tickets/setup/categories/{category.id}"
    listing = client.get("/tickets/setup/categories")
    assert f'href="{url}"' in listing.text
    page = client.get(url)
    assert page.status_code == 200
    assert 'value="Access and sign-in"' in page.text
    assert f'<option selected value="{category.team_id}">Authentication</option>' in page.text
    assert 'href="/tickets/setup/categories">Cancel</a>' in page.text

    billing = _team("Billing")
    saved = client.post(url, data={"name": "Sign-in and MFA", "team": billing.id})
    assert saved.status_code == 302
    assert saved.headers["Location"].endswith("/tickets/setup/categories")
    listing = client.get("/tickets/setup/categories")
    assert "Category Sign-in and MFA saved." in listing.text
    assert "Sign-in and MFA" in listing.text and "Access and sign-in" not in listing.text
    db.session.refresh(category)
    assert (category.name, category.team_id) == ("Sign-in and MFA", billing.id)
    [event] = _events("category.updated")
    assert (event.target_type, event.target_id) == ("category", str(category.id))
    assert event.data == {
        "before": {"name": "Access and sign-in", "team": "Authentication"},
        "after": {"name": "Sign-in and MFA", "team": "Billing"},
    }

    # Only what changed is recorded; saving the same values again records nothing.
    assert client.post(url, data={"name": "Sign-in and MFA", "team": ""}).status_code == 302
    unchanged = client.post(url, data={"name": "Sign-in and MFA", "team": ""})
    assert unchanged.status_code == 302
    assert [e.data for e in _events("category.updated")][1:] == [
        {"before": {"team": "Billing"}, "after": {"team": None}}
    ]
    # htmx follows the redirect itself.
    hx = client.post(url, data={"name": "Sign-in", "team": ""}, headers={"HX-Request": "true"})
    assert hx.status_code == 200
    assert hx.headers["HX-Redirect"].endswith("/tickets/setup/categories")


def test_category_name_must_stay_unique(client, as_role):
    as_role("admin")
    category = _category("Outage")
    technical = _team("Technical")
    response = client.post(
        f"/tickets/setup/categories/{category.id}",
        data={"name": "  billing ", "team": technical.id},
    )
    assert response.status_code == 422
    assert "“billing” exists already." in response.text
    assert 'id="name-error"' in response.text
    db.session.expire_all()
    assert _category("Outage").team_id == technical.id
    assert _events("category.updated") == []
    # Keeping its own name in another case is no clash.
    renamed = client.post(
        f"/tickets/setup/categories/{category.id}", data={"name": "OUTAGE", "team": technical.id}
    )
    assert renamed.status_code == 302


def test_category_edit_refuses_bad_input(client, as_role):
    as_role("admin")
    category = _category("Billing")
    url = f"/tickets/setup/categories/{category.id}"
    empty = client.post(url, data={"name": "  ", "team": ""})
    assert empty.status_code == 422 and "Give it a name." in empty.text
    no_team = client.post(url, data={"name": "Billing", "team": "999999"})
    assert no_team.status_code == 422 and 'id="team-error"' in no_team.text
    db.session.expire_all()
    assert (_category("Billing").team_id, _events("category.updated")) == (
        _team("Billing").id,
        [],
    )


def test_missing_category_is_404(client, as_role):
    as_role("admin")
    assert client.get("/tickets/setup/categories/999999").status_code == 404
    missing = client.post("/tickets/setup/categories/999999", data={"name": "Ghost", "team": ""})
    assert missing.status_code == 404
    assert _category("Ghost") is None


@pytest.mark.parametrize("role", ["agent", "requester"])
def test_only_admins_edit_categories(client, as_role, role):
    as_role(role)
    category = _category("Outage")
    url = f"/tickets/setup/categories/{category.id}"
    assert client.get(url).status_code == 403
    assert client.post(url, data={"name": "Hijacked", "team": ""}).status_code == 403
    db.session.expire_all()
    assert _category("Outage") is not None and _category("Hijacked") is None
    assert _events("category.updated") == []


def test_category_edit_needs_the_csrf_token(client, as_role, csrf):
    as_role("admin")
    category = _category("General question")
    url = f"/tickets/setup/categories/{category.id}"
    refused = client.post(url, data={"name": "Forged", "team": ""})
    assert refused.status_code == 400
    assert "The form expired or was not sent from the portal" in refused.text
    db.session.expire_all()
    assert _category("Forged") is None and _events("category.updated") == []
    token = csrf_token_from(client.get(url).text)
    accepted = client.post(url, data={"name": "Questions", "team": "", "csrf_token": token})
    assert accepted.status_code == 302
    assert "Questions" in client.get("/tickets/setup/categories").text
