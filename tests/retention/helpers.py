"""Old records for the retention tests, written as they would be (closed, ended, sent)
long enough ago to be past their policies."""

from __future__ import annotations

import io
import secrets
from datetime import timedelta

from portal import storage
from portal.extensions import db
from portal.mail import OutboxMessage
from portal.tickets.extra_models import TicketAttachment
from portal.tickets.models import Ticket, TicketChange, TicketReply
from portal.timeutil import utcnow
from portal.users.models import User, UserSession

YEAR = timedelta(days=365)


def ended_session(user: User, days_ago: int) -> UserSession:
    ended = utcnow() - timedelta(days=days_ago)
    session = UserSession(
        token_hash=secrets.token_hex(32),
        user_id=user.id,
        password_version=1,
        created_at=ended - timedelta(hours=1),
        last_seen_at=ended,
        revoked_at=ended,
        revoked_reason="signed_out",
    )
    db.session.add(session)
    return session


def sent_mail(days_ago: int, status: str = "sent") -> OutboxMessage:
    sent = utcnow() - timedelta(days=days_ago)
    message = OutboxMessage(
        to="someone@example.com", subject="Hello", body="Hi", status=status, sent_at=sent
    )
    db.session.add(message)
    return message


def closed_ticket(requester: User, closed_ago: timedelta, status: str = "closed") -> Ticket:
    """A ticket closed `closed_ago` ago, with a reply, a field change and an attachment."""
    closed = utcnow() - closed_ago
    ticket = Ticket(
        subject=f"Printer on fire {secrets.token_hex(3)}",
        requester_id=requester.id,
        status=status,
        created_at=closed - timedelta(days=3),
        closed_at=closed if status == "closed" else None,
    )
    db.session.add(ticket)
    db.session.flush()
    reply = TicketReply(ticket_id=ticket.id, author_id=requester.id, body="Still on fire.")
    db.session.add(reply)
    db.session.add(
        TicketChange(ticket_id=ticket.id, field="status", old_value="resolved", new_value=status)
    )
    stored = storage.save(io.BytesIO(b"smoke\n" * 10), prefix="attachments")
    db.session.add(
        TicketAttachment(
            ticket_id=ticket.id,
            uploaded_by_id=requester.id,
            filename="smoke.txt",
            storage_key=stored.key,
            content_type="text/plain",
            size=stored.size,
            sha256=stored.sha256,
        )
    )
    db.session.flush()
    return ticket
