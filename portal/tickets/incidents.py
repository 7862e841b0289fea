"""Incidents: severities, the post-incident review and its action items."""

from __future__ import annotations

from .models import Ticket


def require_review_to_close(ticket: Ticket) -> None:
    """Raise Conflict when a P0/P1 incident has no complete post-incident review."""
