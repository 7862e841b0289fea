"""The kinds of record a retention policy covers: what each is, its default, and which
rows of it have expired at a cutoff (one predicate per kind, used to count and to purge)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_

from ..audits.models import AuditEvent
from ..changes.models import ChangeRequest
from ..mail import OutboxMessage
from ..tickets.models import Ticket
from ..users.models import UserSession


@dataclass(frozen=True)
class Kind:
    key: str
    label: str
    default_days: int
    model: Any
    # The time a row's retention is counted from.
    since: str
    expired: Callable[[datetime], ColumnElement[bool]]


KINDS: tuple[Kind, ...] = (
    Kind(
        "audit_events",
        "Audit events",
        3 * 365,
        AuditEvent,
        "recorded",
        lambda cutoff: AuditEvent.created_at < cutoff,
    ),
    Kind(
        "tickets",
        "Closed tickets",
        7 * 365,
        Ticket,
        "closed",
        lambda cutoff: and_(Ticket.status == "closed", Ticket.closed_at < cutoff),
    ),
    Kind(
        "change_requests",
        "Closed change requests",
        7 * 365,
        ChangeRequest,
        "closed",
        lambda cutoff: and_(ChangeRequest.status == "closed", ChangeRequest.closed_at < cutoff),
    ),
    Kind(
        "sessions",
        "Ended sessions",
        90,
        UserSession,
        "ended",
        lambda cutoff: and_(UserSession.revoked_at.is_not(None), UserSession.revoked_at < cutoff),
    ),
    Kind(
        "sent_mail",
        "Sent mail",
        90,
        OutboxMessage,
        "sent",
        lambda cutoff: and_(OutboxMessage.status == "sent", OutboxMessage.sent_at < cutoff),
    ),
)
BY_KEY = {kind.key: kind for kind in KINDS}
DEFAULT_DAYS = {kind.key: kind.default_days for kind in KINDS}
# Longer than any record is kept (a century): a typo of extra zeros is refused.
MAX_DAYS = 36_500
