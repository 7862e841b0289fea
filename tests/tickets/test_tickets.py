"""Filing, routing, working and replying to tickets, as the people involved see it."""

from portal.audits.models import AuditEvent
from portal.extensions import db
from portal.mail import OutboxMessage
from portal.tickets.models import SlaEvent, Ticket, TicketChange
from portal.tickets.setup_models import Team
from tests.factories import make_user, sign_in_client


def _file(client, subject="Printer on floor 3 jams", description="It jams on every page.", **extra):
    data = {"subject": subject, "description": description, "type": "request", **extra}
    response = client.post("/tickets/new", data=data)
    assert response.status_code == 302, response.text
    return db.session.scalars(db.select(Ticket).order_by(Ticket.id.desc())).first()


def _team(name):
    return db.session.scalar(db.select(Team).where(Team.name == name))


def _outbox(to):
    return db.session.scalars(db.select(OutboxMessage).where(OutboxMessage.to == to)).all()


def test_requester_files_a_ticket_routed_and_acknowledged(client, as_role):
    me = as_role("requester", email="req@example.com")
    ticket = _file(client, "Cannot log in after password change", "MFA loops forever")
    assert ticket.team.name == "Authentication"
    assert ticket.category.name == "Access and sign-in"
    assert (ticket.status, ticket.priority, ticket.requester_id) == ("new", "medium", me.id)
    assert ticket.number == f"T-{ticket.id:06d}"
    page = client.get(f"/tickets/{ticket.id}")
    assert page.status_code == 200 and ticket.number in page.text
    [ack] = _outbox("req@example.com")
    assert ticket.number in ack.subject and "Expect a first response by" in ack.body
    kinds = {(e.clock, e.kind) for e in db.session.scalars(db.select(SlaEvent))}
    assert kinds == {("response", "start"), ("resolution", "start")}
    assert ticket.response_due_at is not None and ticket.sla_state == "on_track"
    created = db.session.scalar(db.select(AuditEvent).where(AuditEvent.action == "ticket.created"))
    assert created.target_id == str(ticket.id)


def test_unmatched_tickets_go_to_general_support_and_rules_suggest_priority(client, as_role):
    as_role("requester")
    assert _file(client, "A question about the canteen", "menu").team.name == "General support"
    outage = _file(client, "Website is down", "Everyone sees errors")
    assert (outage.team.name, outage.priority) == ("Technical", "high")


def test_markdown_is_rendered_and_sanitised(client, as_role):
    as_role("requester")
    ticket = _file(client, "Formatting", "**bold** <script>alert(1)</script> [x](javascript:y)")
    page = client.get(f"/tickets/{ticket.id}").text
    assert "<strong>bold</strong>" in page
    assert "<script>alert(1)" not in page and 'href="javascript' not in page


def test_requesters_see_only_their_own_tickets(app, client, as_role):
    as_role("requester")
    mine = _file(client, "Mine")
    other = app.test_client()
    sign_in_client(other, make_user(role="requester"))
    theirs = _file(other, "Theirs")
    listing = client.get("/tickets/").text
    assert f'href="/tickets/{mine.id}"' in listing
    assert f'href="/tickets/{theirs.id}"' not in listing
    assert client.get(f"/tickets/{theirs.id}").status_code == 403
    search = client.get(f"/tickets/?q={theirs.number}", headers={"HX-Request": "true"}).text
    assert f'href="/tickets/{theirs.id}"' not in search and 'id="no-results"' in search
    assert client.post(f"/tickets/{theirs.id}/replies", data={"body": "hi"}).status_code == 403


def test_agent_works_a_ticket_and_the_requester_never_sees_internal_notes(app, client, as_role):
    requester = make_user(role="requester", email="rita@example.com")
    theirs = app.test_client()
    sign_in_client(theirs, requester)
    ticket = _file(theirs, "VPN drops every hour")
    agent = as_role("agent", name="Ana Agent")

    assert (
        client.post(f"/tickets/{ticket.id}/assign", data={"assignee": agent.id}).status_code == 302
    )
    db.session.refresh(ticket)
    assert (ticket.assignee_id, ticket.status) == (agent.id, "assigned")

    note = client.post(
        f"/tickets/{ticket.id}/replies", data={"body": "Suspect the DHCP lease", "internal": "y"}
    )
    assert note.status_code == 302
    reply = client.post(f"/tickets/{ticket.id}/replies", data={"body": "Please try the new client"})
    assert reply.status_code == 302
    db.session.refresh(ticket)
    assert ticket.first_response_at is not None

    seen = theirs.get(f"/tickets/{ticket.id}").text
    assert "Please try the new client" in seen and "DHCP lease" not in seen
    agent_view = client.get(f"/tickets/{ticket.id}").text
    assert "DHCP lease" in agent_view and "internal note" in agent_view
    emails = [m.subject for m in _outbox("rita@example.com")]
    assert any("New reply" in s for s in emails)
    assert not any("DHCP" in m.body for m in _outbox("rita@example.com"))
    # Requesters cannot post internal notes, even by forging the field.
    forged = theirs.post(f"/tickets/{ticket.id}/replies", data={"body": "x", "internal": "y"})
    assert forged.status_code == 403

    assert (
        client.post(f"/tickets/{ticket.id}/status", data={"status": "pending"}).status_code == 302
    )
    theirs.post(f"/tickets/{ticket.id}/replies", data={"body": "Still dropping"})
    db.session.refresh(ticket)
    assert ticket.status == "in_progress"  # the requester's reply takes it back to work
    assert (
        client.post(f"/tickets/{ticket.id}/status", data={"status": "resolved"}).status_code == 302
    )
    theirs.post(f"/tickets/{ticket.id}/replies", data={"body": "It happened again"})
    db.session.refresh(ticket)
    assert ticket.status == "in_progress" and ticket.resolved_at is None  # reopened

    kinds = [
        (e.clock, e.kind)
        for e in db.session.scalars(
            db.select(SlaEvent).where(SlaEvent.ticket_id == ticket.id).order_by(SlaEvent.id)
        )
    ]
    assert kinds == [
        ("response", "start"),
        ("resolution", "start"),
        ("response", "stop"),
        ("resolution", "pause"),
        ("resolution", "resume"),
        ("resolution", "stop"),
        ("resolution", "resume"),
    ]


def test_a_move_the_workflow_does_not_allow_is_409(client, as_role):
    as_role("agent")
    ticket = _file(client, "Anything")
    response = client.post(f"/tickets/{ticket.id}/status", data={"status": "closed"})
    assert response.status_code == 409
    assert "cannot move from new to closed" in response.text
    assert client.post(f"/tickets/{ticket.id}/status", data={"status": "bogus"}).status_code == 422


def test_field_changes_are_kept_and_audited(client, as_role):
    as_role("agent")
    ticket = _file(client, "Slow reports")
    billing = _team("Billing")
    response = client.post(
        f"/tickets/{ticket.id}/fields",
        data={"priority": "critical", "team": billing.id, "category": ""},
    )
    assert response.status_code == 302
    changes = {
        (c.field, c.old_value, c.new_value)
        for c in db.session.scalars(
            db.select(TicketChange).where(TicketChange.ticket_id == ticket.id)
        )
    }
    assert ("priority", "medium", "critical") in changes
    assert ("team", "Technical", "Billing") in changes
    actions = {e.action for e in db.session.scalars(db.select(AuditEvent))}
    assert {"ticket.priority_changed", "ticket.team_changed"} <= actions
    page = client.get(f"/tickets/{ticket.id}").text
    assert "changed <strong>priority</strong>" in page
    target = db.session.scalar(
        db.select(SlaEvent).where(SlaEvent.kind == "target", SlaEvent.clock == "resolution")
    )
    assert target.target_seconds == 4 * 3600


def test_escalation_needs_a_reason_and_moves_to_the_level_team(client, as_role):
    lead = make_user(role="agent", email="lead@example.com")
    technical = _team("Technical")
    technical.lead_id = lead.id
    engineering = _team("Engineering")
    db.session.commit()
    as_role("agent")
    ticket = _file(client, "Canteen menu question")
    empty = client.post(f"/tickets/{ticket.id}/escalate", data={"reason": ""})
    assert empty.status_code == 422 and "Say why" in empty.text
    assert (
        client.post(
            f"/tickets/{ticket.id}/escalate", data={"reason": "Needs log access"}
        ).status_code
        == 302
    )
    db.session.refresh(ticket)
    assert (ticket.level, ticket.team_id) == ("L2", technical.id)
    assert any("Escalated to L2" in m.subject for m in _outbox("lead@example.com"))
    client.post(f"/tickets/{ticket.id}/escalate", data={"reason": "Code bug"})
    db.session.refresh(ticket)
    assert (ticket.level, ticket.team_id) == ("L3", engineering.id)
    again = client.post(f"/tickets/{ticket.id}/escalate", data={"reason": "more"})
    assert again.status_code == 409


def test_approvers_and_auditors_read_but_do_not_work(app, client, as_role):
    as_role("requester")
    ticket = _file(client, "Read me")
    for role in ("approver", "auditor"):
        c = app.test_client()
        sign_in_client(c, make_user(role=role))
        assert c.get(f"/tickets/{ticket.id}").status_code == 200
        assert (
            c.post(f"/tickets/{ticket.id}/status", data={"status": "resolved"}).status_code == 403
        )
        assert c.post(f"/tickets/{ticket.id}/replies", data={"body": "hi"}).status_code == 403


def test_new_ticket_form_errors_are_422_with_messages(client, as_role):
    as_role("requester")
    response = client.post("/tickets/new", data={"subject": "", "type": "request"})
    assert response.status_code == 422 and "Say in a few words" in response.text
    bad_type = client.post("/tickets/new", data={"subject": "x", "type": "rumour"})
    assert bad_type.status_code == 422
    assert db.session.scalar(db.select(db.func.count()).select_from(Ticket)) == 0
