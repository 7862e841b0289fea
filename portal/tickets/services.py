"""Ticket use cases. Each checks its rule, changes the ticket, writes the field
history, the SLA events and the audit event together, then commits (emails go
out after the commit)."""

from __future__ import annotations

from sqlalchemy import select

from .. import jobs
from ..audits import record
from ..errors import Conflict, Forbidden, ServiceError
from ..extensions import db
from ..security import Permission, role_has
from ..timeutil import utcnow
from ..users.models import User
from . import incidents, notify, sla
from .access import can_reply
from .models import TYPES, Ticket, TicketChange, TicketReply
from .routing import route
from .setup_models import LEVELS, PRIORITIES, Category, Team
from .workflow import REOPEN_FROM, check_transition


def _refresh_sla(ticket: Ticket) -> None:
    """Recompute the ticket's due times and schedule its at-risk and breach checks."""
    from .sweep import schedule_checks

    schedule_checks(ticket, sla.recompute(ticket))


def can_work(user: User) -> bool:
    return role_has(user.role, Permission.TICKETS_WORK)


def _require_worker(user: User) -> None:
    if not can_work(user):
        raise Forbidden("Only agents and admins work tickets.")


def _label(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, User | Team | Category):
        return value.name
    return str(value)[:200]


def _change(
    ticket: Ticket,
    field: str,
    old: object,
    new: object,
    actor: User | None,
    reason: str | None = None,
) -> None:
    """Keep one field change in the ticket's history and the audit trail."""
    before, after = _label(old), _label(new)
    db.session.add(
        TicketChange(
            ticket_id=ticket.id,
            actor_id=getattr(actor, "id", None),
            field=field,
            old_value=before,
            new_value=after,
            reason=reason,
        )
    )
    data: dict[str, object] = {"before": {field: before}, "after": {field: after}}
    if reason:
        data["reason"] = reason
    record(f"ticket.{field}_changed", actor, ticket, **data)


def create_ticket(
    requester: User,
    subject: str,
    description: str,
    type_: str = "request",
    priority: str | None = None,
) -> Ticket:
    """File a ticket: classify and route it, start its clocks, acknowledge it by email."""
    if type_ not in TYPES:
        raise ServiceError("Choose request or incident.", field="type")
    if priority is not None and priority not in PRIORITIES:
        raise ServiceError("Choose one of the listed priorities.", field="priority")
    routed = route(subject, description)
    now = utcnow()
    ticket = Ticket(
        type=type_,
        subject=subject.strip(),
        description=description.strip(),
        requester_id=requester.id,
        team_id=routed.team.id,
        category_id=routed.category.id if routed.category else None,
        priority=priority or routed.priority or "medium",
        status="new",
        created_at=now,
        status_changed_at=now,
    )
    db.session.add(ticket)
    db.session.flush()
    sla.start(ticket, now)
    _refresh_sla(ticket)
    record(
        "ticket.created",
        requester,
        ticket,
        after={
            "type": ticket.type,
            "priority": ticket.priority,
            "team": routed.team.name,
            "category": _label(routed.category),
            "rule": _label(routed.rule),
        },
    )
    notify.acknowledge(ticket)
    jobs.commit()
    return ticket


def _move(ticket: Ticket, status: str, actor: User | None, reason: str | None = None) -> None:
    old = ticket.status
    check_transition(old, status)
    if status == "closed":
        incidents.require_review_to_close(ticket)
    now = utcnow()
    ticket.status, ticket.status_changed_at = status, now
    if status == "resolved":
        ticket.resolved_at = now
    elif status == "closed":
        ticket.closed_at = now
    elif old in REOPEN_FROM:
        ticket.resolved_at = ticket.closed_at = None
    sla.status_changed(ticket, old, status, now)
    _change(ticket, "status", old, status, actor, reason)


def change_status(
    ticket: Ticket, status: str, actor: User | None, reason: str | None = None
) -> None:
    if actor is not None:
        _require_worker(actor)
    if status == ticket.status:
        return
    if status == "assigned" and ticket.assignee_id is None:
        raise Conflict("Assign the ticket to someone before marking it assigned.")
    _move(ticket, status, actor, reason)
    _refresh_sla(ticket)
    jobs.commit()


def assign(ticket: Ticket, assignee: User | None, actor: User) -> None:
    _require_worker(actor)
    if assignee is not None and (not assignee.is_active or not can_work(assignee)):
        raise ServiceError("Tickets go to active agents or admins.", field="assignee")
    if (assignee and assignee.id) == ticket.assignee_id:
        return
    _change(ticket, "assignee", ticket.assignee, assignee, actor)
    ticket.assignee_id = assignee.id if assignee else None
    if assignee is not None and ticket.status == "new":
        _move(ticket, "assigned", actor)
    elif assignee is None and ticket.status == "assigned":
        _move(ticket, "new", actor)
    _refresh_sla(ticket)
    jobs.commit()


def update_fields(
    ticket: Ticket,
    actor: User,
    priority: str | None = None,
    team: Team | None = None,
    category: Category | None = None,
) -> None:
    """Change priority, team and/or category; each change is kept and audited."""
    _require_worker(actor)
    now = utcnow()
    if priority is not None and priority != ticket.priority:
        if priority not in PRIORITIES:
            raise ServiceError("Choose one of the listed priorities.", field="priority")
        _change(ticket, "priority", ticket.priority, priority, actor)
        ticket.priority = priority
        sla.priority_changed(ticket, now)
    if team is not None and team.id != ticket.team_id:
        _change(ticket, "team", ticket.team, team, actor)
        ticket.team_id = team.id
    if category is not None and category.id != ticket.category_id:
        _change(ticket, "category", ticket.category, category, actor)
        ticket.category_id = category.id
    _refresh_sla(ticket)
    jobs.commit()


def escalate(ticket: Ticket, reason: str, actor: User) -> Team:
    """L1 → L2 → L3: a reason is required; the ticket moves to that level's team."""
    _require_worker(actor)
    reason = reason.strip()
    if not reason:
        raise ServiceError("Say why the ticket needs the next level.", field="reason")
    index = LEVELS.index(ticket.level)
    if index + 1 >= len(LEVELS):
        raise Conflict("The ticket is already at L3, the highest level.")
    level = LEVELS[index + 1]
    team = db.session.scalar(select(Team).where(Team.escalation_level == level))
    if team is None:
        raise Conflict(f"No team takes {level} escalations; an admin sets one on the Teams page.")
    _change(ticket, "level", ticket.level, level, actor, reason)
    ticket.level = level
    if team.id != ticket.team_id:
        _change(ticket, "team", ticket.team, team, actor, reason)
        ticket.team_id = team.id
    db.session.flush()
    db.session.refresh(ticket)
    notify.escalated(ticket, team, reason)
    jobs.commit()
    return team


def add_reply(ticket: Ticket, author: User, body: str, internal: bool = False) -> TicketReply:
    """A public reply or an internal note. The requester's reply reopens a resolved
    ticket and takes a pending one back to work; an agent's first public reply is
    the first response."""
    body = body.strip()
    if not body:
        raise ServiceError("Write something first.", field="body")
    worker = can_work(author)
    is_requester = author.id == ticket.requester_id
    if not can_reply(author, ticket):
        raise Forbidden("Only the requester and agents reply to a ticket.")
    if internal and not worker:
        raise Forbidden("Only agents and admins write internal notes.")
    if ticket.status == "closed" and not worker:
        raise Conflict("This ticket is closed; open a new one.")
    now = utcnow()
    reply = TicketReply(
        ticket_id=ticket.id, author_id=author.id, body=body, is_internal=internal, created_at=now
    )
    db.session.add(reply)
    db.session.flush()
    if worker and not internal and ticket.first_response_at is None and not is_requester:
        ticket.first_response_at = now
        sla.first_response(ticket, now)
    if is_requester and not worker and ticket.status in ("resolved", "pending"):
        _move(ticket, "in_progress", author, "the requester replied")
    record(
        "ticket.note_added" if internal else "ticket.replied",
        author,
        ticket,
        reply_id=reply.id,
        length=len(body),
    )
    _refresh_sla(ticket)
    if not internal:
        notify.public_reply(ticket, reply)
    jobs.commit()
    return reply
