"""The steps on a change page: submitting, voting, scheduling around conflicts and
freezes, carrying out, reviewing and closing, and linking tickets. Each loads the
change, asks the service's own rule who may act, then calls the service; a refusal
comes back at its field (422), or as a 409 naming what the step still needs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import abort, flash, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from ..errors import ServiceError
from ..extensions import db
from ..security import Permission, permission_required
from ..tickets.access import can_see as can_see_ticket
from ..tickets.models import Ticket
from ..tickets.queries import ticket_number
from ..users.models import User
from ..web import redirect_to, render
from . import approvals, lifecycle, services
from .access import get_change_or_404
from .conflicts import FreezeConflict, WindowConflict
from .forms import CloseForm, FinishForm, LinkTicketForm, ReviewForm, ScheduleForm, VoteForm
from .inbox_views import _voted_message
from .models import ChangeRequest
from .views import _allowed, _refused, _window, bp, detail_context

CREATE, APPROVE = Permission.CHANGES_CREATE, Permission.CHANGES_APPROVE


def _back(change: ChangeRequest, message: str) -> Response:
    flash(message, "success")
    return redirect_to(url_for("changes.detail", change_id=change.id))


def _step(
    change_id: int,
    check: Callable[[ChangeRequest, User], None],
    act: Callable[[ChangeRequest], None],
    message: Callable[[ChangeRequest], str],
) -> Response:
    """A step without fields: load, check who may, act, back to the change page."""
    change = get_change_or_404(change_id, current_user)
    _allowed(check, change)
    try:
        act(change)
    except ServiceError as exc:
        return _refused(exc)
    return _back(change, message(change))


def _form_step(
    change_id: int,
    check: Callable[[ChangeRequest, User], None] | None,
    form_class: type,
    name: str,
    act: Callable[[ChangeRequest, Any], str],
) -> Response:
    """A step with a form: bad input or a refusal re-renders the form's block with the
    message at its field (422), or at the form when the step is not allowed (409)."""
    change = get_change_or_404(change_id, current_user)
    if check is not None:
        _allowed(check, change)
    form = form_class()
    status, extra = 422, {}
    if form.validate():
        try:
            return _back(change, act(change, form))
        except WindowConflict as exc:
            status, extra["clashes"] = exc.status, exc.clashes
            form.add_error(exc.field, exc.message)
        except FreezeConflict as exc:
            status, extra["freezes"] = exc.status, exc.freezes
            form.add_error(exc.field, exc.message)
        except ServiceError as exc:
            if exc.status == 403:
                return _refused(exc)
            status = exc.status
            form.add_error(exc.field, exc.message)
    context = detail_context(change, **{name: form, f"show_{name}": True, **extra})
    return render("changes/detail.html", name, status, **context)


@bp.route("/<int:change_id>/submit", methods=["POST"])
@permission_required(CREATE)
def submit(change_id: int) -> Response:
    return _step(
        change_id,
        services.require_owner,
        lambda c: approvals.submit(c, current_user),
        lambda c: f"{c.number} is submitted; it is now {c.status_label.lower()}.",
    )


@bp.route("/<int:change_id>/resubmit", methods=["POST"])
@permission_required(CREATE)
def resubmit(change_id: int) -> Response:
    return _step(
        change_id,
        services.require_owner,
        lambda c: approvals.resubmit(c, current_user),
        lambda c: f"{c.number} is resubmitted for a new round of approval.",
    )


@bp.route("/<int:change_id>/vote", methods=["POST"])
@permission_required(APPROVE)
def vote(change_id: int) -> Response:
    def act(change: ChangeRequest, form: VoteForm) -> str:
        ballot = approvals.vote(change, current_user, form.decision.data, form.comment.data or "")
        return _voted_message(change, ballot.decision)

    return _form_step(change_id, None, VoteForm, "vote_form", act)


@bp.route("/<int:change_id>/schedule", methods=["POST"])
@permission_required(CREATE)
def schedule(change_id: int) -> Response:
    def act(change: ChangeRequest, form: ScheduleForm) -> str:
        acknowledged = lifecycle.schedule(
            change,
            current_user,
            _window(form),
            acknowledge_conflicts=bool(form.acknowledge_conflicts.data),
            freeze_reason=form.freeze_reason.data or None,
        )
        noted = f" ({len(acknowledged)} conflict(s) acknowledged)" if acknowledged else ""
        return f"{change.number} is scheduled{noted}."

    return _form_step(change_id, services.require_involved, ScheduleForm, "schedule_form", act)


@bp.route("/<int:change_id>/implement", methods=["POST"])
@permission_required(CREATE)
def start_implementing(change_id: int) -> Response:
    return _step(
        change_id,
        services.require_involved,
        lambda c: lifecycle.start_implementing(c, current_user),
        lambda c: f"{c.number}: implementation started.",
    )


@bp.route("/<int:change_id>/validate", methods=["POST"])
@permission_required(CREATE)
def start_validating(change_id: int) -> Response:
    return _step(
        change_id,
        services.require_involved,
        lambda c: lifecycle.start_validating(c, current_user),
        lambda c: f"{c.number}: validation started.",
    )


def _finish(change_id: int, finish: Callable[..., None], done: str) -> Response:
    def act(change: ChangeRequest, form: FinishForm) -> str:
        finish(change, current_user, form.validation_results.data or "", form.outcome.data or "")
        return f"{change.number} is {done}."

    return _form_step(change_id, services.require_involved, FinishForm, "finish_form", act)


@bp.route("/<int:change_id>/complete", methods=["POST"])
@permission_required(CREATE)
def complete(change_id: int) -> Response:
    return _finish(change_id, lifecycle.complete, "completed")


@bp.route("/<int:change_id>/fail", methods=["POST"])
@permission_required(CREATE)
def fail(change_id: int) -> Response:
    return _finish(change_id, lifecycle.fail, "marked failed (rolled back)")


@bp.route("/<int:change_id>/review", methods=["POST"])
@permission_required(APPROVE)
def review(change_id: int) -> Response:
    def act(change: ChangeRequest, form: ReviewForm) -> str:
        lifecycle.save_review(
            change, current_user, form.findings.data or "", bool(form.emergency_justified.data)
        )
        return f"The retrospective of {change.number} is saved."

    return _form_step(change_id, None, ReviewForm, "review_form", act)


@bp.route("/<int:change_id>/close", methods=["POST"])
@permission_required(CREATE)
def close(change_id: int) -> Response:
    def act(change: ChangeRequest, form: CloseForm) -> str:
        lifecycle.close(change, current_user, form.lessons_learned.data or "")
        return f"{change.number} is closed."

    return _form_step(change_id, services.require_involved, CloseForm, "close_form", act)


@bp.route("/<int:change_id>/tickets", methods=["POST"])
@permission_required(CREATE)
def link_ticket(change_id: int) -> Response:
    def act(change: ChangeRequest, form: LinkTicketForm) -> str:
        ticket = db.session.get(Ticket, ticket_number(form.ticket.data) or 0)
        if ticket is None or not can_see_ticket(current_user, ticket):
            raise ServiceError("That is not a ticket you can see.", field="ticket")
        services.link_ticket(change, ticket, current_user)
        return f"{ticket.number} is linked to {change.number}."

    return _form_step(change_id, services.require_involved, LinkTicketForm, "link_form", act)


@bp.route("/<int:change_id>/tickets/<int:ticket_id>/unlink", methods=["POST"])
@permission_required(CREATE)
def unlink_ticket(change_id: int, ticket_id: int) -> Response:
    def act(change: ChangeRequest) -> None:
        ticket = db.session.get(Ticket, ticket_id) if 0 < ticket_id < 2**31 else None
        if ticket is None:
            abort(404)
        services.unlink_ticket(change, ticket, current_user)

    return _step(
        change_id,
        services.require_involved,
        act,
        lambda c: f"T-{ticket_id:06d} is no longer linked to {c.number}.",
    )
