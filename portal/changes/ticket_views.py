"""What the ticket page shows of the changes linked to its ticket: a template global on the
changes blueprint, so the ticket's own view needs to know nothing of changes."""

from __future__ import annotations

from flask_login import current_user

from ..tickets.models import Ticket
from .queries import LinkedChange, linked_to_ticket
from .views import bp


@bp.app_template_global()
def linked_changes(ticket: Ticket) -> list[LinkedChange]:
    """The viewer sees only the linked changes they may open (access.visible), as on the
    change list: a requester's ticket may be linked to changes of other people."""
    if not current_user.is_authenticated:
        return []
    return linked_to_ticket(ticket.id, current_user)
