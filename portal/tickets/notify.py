"""The emails tickets send; each is an Outbox row delivered by a job after the commit."""

from __future__ import annotations

from datetime import datetime

from flask import current_app, render_template

from .. import mail
from ..timeutil import to_zone
from ..users.models import User
from ..web import external_url
from .models import Ticket, TicketReply
from .setup_models import Team


def _link(ticket: Ticket) -> str:
    return external_url("tickets.detail", ticket_id=ticket.id)


def _local(value: datetime | None, user: User) -> str:
    local = to_zone(value, user.timezone or current_app.config["SETTINGS"].TIMEZONE)
    return local.strftime("%Y-%m-%d %H:%M %Z") if local else "—"


def _send(to: User, subject: str, template: str, **context: object) -> None:
    if to.is_active:
        body = render_template(f"tickets/email/{template}", recipient=to, **context)
        mail.send(to.email, subject, body)


def acknowledge(ticket: Ticket) -> None:
    """The automatic reply: number, priority and when to expect a first response."""
    _send(
        ticket.requester,
        f"[{ticket.number}] We received your request: {ticket.subject}",
        "received.txt",
        ticket=ticket,
        link=_link(ticket),
        response_due=_local(ticket.response_due_at, ticket.requester),
    )


def public_reply(ticket: Ticket, reply: TicketReply) -> None:
    """A public reply goes to the other side: the requester, or the assignee."""
    if reply.author_id != ticket.requester_id:
        _send(
            ticket.requester,
            f"[{ticket.number}] New reply: {ticket.subject}",
            "reply.txt",
            ticket=ticket,
            reply=reply,
            link=_link(ticket),
        )
    elif ticket.assignee is not None:
        _send(
            ticket.assignee,
            f"[{ticket.number}] The requester replied: {ticket.subject}",
            "reply.txt",
            ticket=ticket,
            reply=reply,
            link=_link(ticket),
        )


def escalated(ticket: Ticket, team: Team, reason: str) -> None:
    recipients = {m.id: m for m in team.members}
    if team.lead is not None:
        recipients[team.lead.id] = team.lead
    for person in recipients.values():
        _send(
            person,
            f"[{ticket.number}] Escalated to {ticket.level} ({team.name})",
            "escalated.txt",
            ticket=ticket,
            team=team,
            reason=reason,
            link=_link(ticket),
        )


def status_notice(ticket: Ticket, message: str) -> None:
    _send(
        ticket.requester,
        f"[{ticket.number}] {message}",
        "status.txt",
        ticket=ticket,
        message=message,
        link=_link(ticket),
    )


def sla_warning(ticket: Ticket, to: User, clock: str, threshold: str, state: object) -> None:
    """At 75 % of a target, and at the breach: to the assignee, or the team lead."""
    what = "first response" if clock == "response" else "resolution"
    headline = (
        f"{what} target breached"
        if threshold == "breached"
        else f"{what} target at risk (75 % used)"
    )
    _send(
        to,
        f"[{ticket.number}] SLA: {headline}",
        "sla_warning.txt",
        ticket=ticket,
        headline=headline,
        state=state,
        link=_link(ticket),
        due=_local(getattr(state, "due_at", None), to),
    )
