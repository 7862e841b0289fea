"""The approver's inbox: the changes waiting for their vote, each voted on in place
(routes on the changes blueprint)."""

from __future__ import annotations

import logging

from flask import flash, url_for
from flask_login import current_user
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.wrappers import Response

from ..errors import ServiceError
from ..extensions import db
from ..security import Permission, permission_required
from ..web import is_htmx, redirect_to, render
from . import approvals
from .access import get_change_or_404
from .forms import VoteForm
from .models import ChangeRequest
from .queries import inbox as inbox_items
from .queries import waiting_count
from .views import _refused, bp

APPROVE = Permission.CHANGES_APPROVE
log = logging.getLogger(__name__)


@bp.app_template_global()
def approvals_waiting() -> int:
    """The number beside Approvals in the navigation: what waits for the viewer's vote."""
    if not current_user.is_authenticated:
        return 0
    try:
        return waiting_count(current_user)
    except SQLAlchemyError:
        # Every page, error pages included, shows the navigation: it must not take them down.
        log.exception("the approvals waiting count could not be loaded")
        db.session.rollback()
        return 0


@bp.route("/inbox")
@permission_required(APPROVE)
def inbox() -> Response:
    return render("changes/inbox.html", None, items=inbox_items(current_user), forms={})


@bp.route("/inbox/<int:change_id>/vote", methods=["POST"])
@permission_required(APPROVE)
def inbox_vote(change_id: int) -> Response:
    """The vote cast from an inbox row: htmx swaps the row in place with the result (or
    the row with its error); without JS, back to the inbox."""
    change = get_change_or_404(change_id, current_user)
    form = VoteForm()
    status = 422
    if form.validate():
        try:
            ballot = approvals.vote(
                change, current_user, form.decision.data, form.comment.data or ""
            )
        except ServiceError as exc:
            if exc.status != 422:
                return _refused(exc)
            form.add_error(exc.field, exc.message)
        else:
            if not is_htmx():
                flash(_voted_message(change, ballot.decision), "success")
                return redirect_to(url_for("changes.inbox"))
            return render("changes/inbox.html", "row", item=change, ballot=ballot, forms={})
    forms = {change.id: form}
    if is_htmx():
        return render("changes/inbox.html", "row", status, item=change, forms=forms)
    items = inbox_items(current_user)
    if change not in items:
        items.insert(0, change)
    return render("changes/inbox.html", None, status, items=items, forms=forms)


def _voted_message(change: ChangeRequest, decision: str) -> str:
    verb = "approved" if decision == "approve" else "rejected"
    return f"You {verb} {change.number}; it is now {change.status_label.lower()}."
