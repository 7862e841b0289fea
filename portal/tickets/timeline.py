"""A ticket's timeline: replies, field changes and SLA events in one order.
Three queries whatever the ticket's length."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from ..extensions import db
from ..users.models import User
from .access import can_see_internal
from .models import SlaEvent, Ticket, TicketChange, TicketReply


@dataclass(frozen=True)
class Entry:
    at: datetime
    kind: str  # reply | note | change | sla
    item: Any


def timeline(ticket: Ticket, viewer: User) -> list[Entry]:
    replies = select(TicketReply).where(TicketReply.ticket_id == ticket.id)
    if not can_see_internal(viewer):
        replies = replies.where(TicketReply.is_internal.is_(False))
    entries = [
        Entry(r.created_at, "note" if r.is_internal else "reply", r)
        for r in db.session.scalars(replies)
    ]
    entries += [
        Entry(c.created_at, "change", c)
        for c in db.session.scalars(select(TicketChange).where(TicketChange.ticket_id == ticket.id))
    ]
    entries += [
        Entry(e.at, "sla", e)
        for e in db.session.scalars(select(SlaEvent).where(SlaEvent.ticket_id == ticket.id))
    ]
    order = {"reply": 0, "note": 0, "change": 1, "sla": 2}
    return sorted(entries, key=lambda e: (e.at, order[e.kind], e.item.id))
