"""`flask tickets demo`: volume data as the services and the sweep would have left it."""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import timedelta

from portal.audits.models import AuditEvent
from portal.extensions import db
from portal.tickets import incidents, sla
from portal.tickets.cli import tickets_cli
from portal.tickets.demo import seed_tickets
from portal.tickets.models import (
    OPEN_STATUSES,
    SLA_STATES,
    SlaEvent,
    SlaNotification,
    Ticket,
    TicketChange,
    TicketReply,
)
from portal.tickets.sweep import run_sweep
from portal.timeutil import utcnow


def _events_by_ticket() -> dict[int, list[SlaEvent]]:
    events: dict[int, list[SlaEvent]] = defaultdict(list)
    for event in db.session.scalars(db.select(SlaEvent).order_by(SlaEvent.id)):
        events[event.ticket_id].append(event)
    return events


def test_demo_command_adds_consistent_tickets_the_list_filters(app, client, as_role):
    result = app.test_cli_runner().invoke(tickets_cli, ["demo", "--count", "200", "--seed", "1"])
    assert result.exit_code == 0, result.output
    assert "Added 200 tickets" in result.output and "tickets/s" in result.output

    tickets = db.session.scalars(db.select(Ticket).order_by(Ticket.id)).all()
    assert len(tickets) == 200
    assert [t.created_at for t in tickets] == sorted(t.created_at for t in tickets)
    assert {t.type for t in tickets} == {"request", "incident"}
    assert {t.team.name for t in tickets} >= {"General support", "Authentication", "Technical"}
    replies = db.session.scalars(db.select(TicketReply)).all()
    assert len(replies) > 400 and any(r.is_internal for r in replies)
    assert db.session.scalar(db.select(db.func.count()).select_from(TicketChange)) > 400
    assert db.session.scalar(db.select(db.func.count()).select_from(AuditEvent)) == 0

    events = _events_by_ticket()
    for ticket in tickets:
        assert ticket.sla_state in SLA_STATES
        mine = events[ticket.id]
        assert [(e.clock, e.kind) for e in mine[:2]] == [
            ("response", "start"),
            ("resolution", "start"),
        ]
        resolution = [e.kind for e in mine if e.clock == "resolution"]
        response_stops = [e for e in mine if e.clock == "response" and e.kind == "stop"]
        if ticket.status in ("resolved", "closed"):
            assert ticket.resolved_at is not None and resolution[-1] == "stop"
            assert (ticket.closed_at is not None) == (ticket.status == "closed")
            assert response_stops, ticket.number
        elif ticket.status == "pending":
            assert resolution[-1] == "pause"
        else:
            assert resolution[-1] in ("start", "resume", "target")
            assert ticket.resolved_at is None and ticket.closed_at is None
        if ticket.first_response_at is not None:
            assert response_stops[0].at == ticket.first_response_at
            assert any(
                r.created_at == ticket.first_response_at and not r.is_internal
                for r in replies
                if r.ticket_id == ticket.id and r.author_id != ticket.requester_id
            )
        if ticket.status != "new":
            assert ticket.assignee_id is not None

    pending = [t for t in reversed(tickets) if t.status == "pending"]
    assert pending, "seed 1 gives pending tickets"
    as_role("agent")
    page = client.get("/tickets/?status=pending")
    assert page.status_code == 200
    shown = set(re.findall(r"T-\d{6}", page.text))
    assert {t.number for t in pending[:25]} <= shown
    assert not shown & {t.number for t in tickets if t.status != "pending"}


def test_demo_data_is_what_replaying_and_the_sweep_would_give(app, ctx):
    now = utcnow().replace(microsecond=0)
    summary = seed_tickets(150, seed=7, now=now)
    assert summary.tickets == 150 and summary.replies and summary.sla_events

    events, reviewed = _events_by_ticket(), 0
    for ticket in db.session.scalars(db.select(Ticket)):
        clocks = sla.clocks(ticket, events[ticket.id], now=now)
        assert ticket.sla_state == clocks.state, ticket.number
        expected = clocks.resolution.due_at or clocks.resolution.breached_at
        assert ticket.resolution_due_at == expected, ticket.number
        if ticket.status == "closed" and incidents.needs_review(ticket):
            assert incidents.review_problems(ticket) == [], ticket.number
            reviewed += 1
    assert reviewed, "seed 7 closes P0/P1 incidents, each on a complete review"
    assert db.session.scalar(db.select(db.func.count()).select_from(SlaNotification))

    # Everything the sweep would have done by now is done: it finds nothing left to do.
    result = run_sweep(now=now + timedelta(seconds=1))
    assert (result.closed, result.resolved, result.warnings_sent) == ([], [], 0)
    open_count = db.session.scalar(
        db.select(db.func.count()).select_from(Ticket).where(Ticket.status.in_(OPEN_STATUSES))
    )
    assert result.checked == open_count
