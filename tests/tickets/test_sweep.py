"""The periodic sweep: SLA warnings once per threshold, auto-close and auto-resolve."""

from datetime import timedelta

from redis import Redis
from rq import Queue

from portal import jobs
from portal.extensions import db
from portal.mail import OutboxMessage
from portal.tickets import services
from portal.tickets.models import SlaEvent, SlaNotification, Ticket, TicketChange
from portal.tickets.setup_models import Team
from portal.tickets.sweep import run_sweep
from portal.timeutil import utcnow
from tests.conftest import REDIS_URL, needs_redis
from tests.factories import make_user


def _age(ticket: Ticket, delta: timedelta) -> None:
    """Move a ticket and its clock events into the past, as if time had passed."""
    for event in db.session.scalars(db.select(SlaEvent).where(SlaEvent.ticket_id == ticket.id)):
        event.at -= delta
    ticket.created_at -= delta
    ticket.status_changed_at -= delta
    db.session.commit()


def _mail_to(email):
    return [
        m.subject
        for m in db.session.scalars(
            db.select(OutboxMessage).where(OutboxMessage.to == email).order_by(OutboxMessage.id)
        )
    ]


def test_at_risk_then_breach_warnings_go_to_the_assignee_once(ctx):
    requester = make_user()
    agent = make_user(role="agent", email="on-call@example.com")
    ticket = services.create_ticket(
        requester, "Payments API returns errors", "", priority="critical"
    )
    services.assign(ticket, agent, agent)

    _age(ticket, timedelta(minutes=12))  # 12 of 15 response minutes used: at risk
    assert run_sweep().warnings_sent == 1
    assert run_sweep().warnings_sent == 0  # the same threshold is not sent twice
    db.session.refresh(ticket)
    assert ticket.sla_state == "at_risk"
    assert _mail_to("on-call@example.com")[-1].endswith("first response target at risk (75 % used)")

    _age(ticket, timedelta(minutes=4))
    assert run_sweep().warnings_sent == 1
    db.session.refresh(ticket)
    assert ticket.sla_state == "breached"
    assert _mail_to("on-call@example.com")[-1].endswith("first response target breached")
    notes = {(n.clock, n.threshold) for n in db.session.scalars(db.select(SlaNotification))}
    assert notes == {("response", "at_risk"), ("response", "breached")}


def test_unassigned_ticket_warns_the_team_lead(ctx):
    lead = make_user(role="agent", email="lead@example.com")
    billing = db.session.scalar(db.select(Team).where(Team.name == "Billing"))
    billing.lead_id = lead.id
    db.session.commit()
    ticket = services.create_ticket(make_user(), "Invoice is wrong", "", priority="high")
    assert ticket.team_id == billing.id
    _age(ticket, timedelta(minutes=50))  # 50 of 60 minutes
    run_sweep()
    assert any("at risk" in s for s in _mail_to("lead@example.com"))


def test_pending_pauses_resolution_but_not_the_response_clock(ctx):
    agent = make_user(role="agent")
    ticket = services.create_ticket(make_user(), "Question", "", priority="high")
    services.add_reply(ticket, agent, "Which account?")  # first response: met
    services.change_status(ticket, "pending", agent)
    _age(ticket, timedelta(hours=30))  # far beyond the 24 h resolution target, but paused
    run_sweep()
    db.session.refresh(ticket)
    assert ticket.sla_state == "on_track"
    assert db.session.scalar(db.select(db.func.count()).select_from(SlaNotification)) == 0


def test_resolved_tickets_close_after_seven_days(ctx):
    agent = make_user(role="agent")
    ticket = services.create_ticket(make_user(), "Done already", "")
    services.change_status(ticket, "resolved", agent)
    fresh = services.create_ticket(make_user(), "Resolved today", "")
    services.change_status(fresh, "resolved", agent)
    _age(ticket, timedelta(days=7, minutes=1))
    result = run_sweep()
    assert result.closed == [ticket.number]
    db.session.refresh(ticket)
    db.session.refresh(fresh)
    assert (ticket.status, fresh.status) == ("closed", "resolved")
    change = db.session.scalars(
        db.select(TicketChange)
        .where(TicketChange.ticket_id == ticket.id, TicketChange.field == "status")
        .order_by(TicketChange.id.desc())
    ).first()
    assert (change.actor_id, change.new_value, change.reason) == (
        None,
        "closed",
        "resolved for 7 days",
    )


def test_pending_without_reply_for_fourteen_days_is_resolved_with_a_notice(ctx, settings):
    requester = make_user(email="quiet@example.com")
    agent = make_user(role="agent")
    ticket = services.create_ticket(requester, "Need a new laptop", "")
    services.change_status(ticket, "pending", agent)
    recent = services.create_ticket(requester, "Need a mouse", "")
    services.change_status(recent, "pending", agent)
    _age(ticket, timedelta(days=14, minutes=1))
    _age(recent, timedelta(days=13))
    assert run_sweep().resolved == [ticket.number]
    db.session.refresh(ticket)
    db.session.refresh(recent)
    assert (ticket.status, recent.status) == ("resolved", "pending")
    assert any("no reply for 14 days" in s for s in _mail_to("quiet@example.com"))
    # The periods are settings.
    settings(TICKET_PENDING_RESOLVE_DAYS=10)
    assert run_sweep().resolved == [recent.number]


def test_sweep_command_prints_a_summary(app, ctx):
    services.create_ticket(make_user(), "Anything", "")
    from portal.tickets.sweep import sweep_job

    assert "open tickets checked" in sweep_job()


@needs_redis
def test_checks_are_scheduled_for_the_at_risk_and_due_moments(app, ctx, settings):
    settings(REDIS_URL=REDIS_URL)
    app.extensions.pop("portal.redis", None)
    Redis.from_url(REDIS_URL).flushdb()
    try:
        start = utcnow()
        ticket = services.create_ticket(make_user(), "Site down", "", priority="critical")
        registry = Queue("default", connection=jobs.connection(app)).scheduled_job_registry
        times = sorted(
            registry.get_scheduled_time(job_id).replace(tzinfo=None)
            for job_id in registry.get_job_ids()
        )
        # Response at 75 % (11:15) and 100 % (15:00); resolution at 3 h and 4 h.
        offsets = [round((t - start).total_seconds() / 60) for t in times]
        assert offsets == [11, 15, 180, 240], offsets
        assert ticket.id
    finally:
        Redis.from_url(REDIS_URL).flushdb()
        app.extensions.pop("portal.redis", None)
