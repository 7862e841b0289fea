"""Incident routes on the tickets blueprint: the post-incident review, its action items,
and the template globals behind the review panel and the open-incident banner."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from flask import abort, flash, make_response, render_template, url_for
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.wrappers import Response
from wtforms import DateField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, InputRequired, Length, Optional

from ..errors import ServiceError
from ..extensions import db
from ..forms import PortalForm
from ..security import Permission, permission_required
from ..users.models import User
from ..web import error_response, is_htmx, redirect_to, render
from . import incidents, services, ticket_cache
from .access import get_ticket_or_404
from .extra_models import ActionItem, IncidentReview
from .forms import MAX_TEXT
from .models import Ticket
from .views import bp, detail_context

log = logging.getLogger(__name__)
WORK = Permission.TICKETS_WORK


_TEXT_LENGTH = Length(max=MAX_TEXT, message=f"Use at most {MAX_TEXT} characters.")


# Prefixed: the ticket page already has elements with the ids "timeline" and "description".
class ReviewForm(PortalForm):
    timeline = TextAreaField(
        "Timeline",
        validators=[Optional(), _TEXT_LENGTH],
        description="What happened when: detection, escalation, mitigation, recovery. "
        "Markdown works.",
    )
    root_cause = TextAreaField(
        "Root cause",
        validators=[Optional(), _TEXT_LENGTH],
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, prefix="review", **kwargs)


class ActionItemForm(PortalForm):
    description = StringField(
        "What needs doing",
        validators=[
            DataRequired("Say what needs doing."),
            Length(max=500, message="Use at most 500 characters."),
        ],
    )
    # Checked against the database (an active user) rather than the rendered choices.
    owner = SelectField("Owner", choices=[], validate_choice=False)
    # InputRequired, not DataRequired: a date that does not parse keeps its own message.
    due_on = DateField(
        "Due",
        validators=[InputRequired("Choose a due date.")],
        invalid_value_message="Enter the date as YYYY-MM-DD.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, prefix="action", **kwargs)


def _active_users() -> list[User]:
    return list(
        db.session.scalars(select(User).where(User.is_active.is_(True)).order_by(User.name))
    )


def _owner(value: str | None) -> User | None:
    try:
        user_id = int(value or "")
    except ValueError:
        return None
    return db.session.get(User, user_id) if 0 < user_id <= incidents.MAX_ID else None


@dataclass
class IncidentPanel:
    """What the review panel on the ticket page shows, beyond the detail page's context."""

    severity: str
    needs_review: bool
    review: IncidentReview | None
    problems: list[str]
    review_form: ReviewForm | None = None
    action_form: ActionItemForm | None = None


@bp.app_template_global()
def incident_panel(
    ticket: Ticket,
    review_form: ReviewForm | None = None,
    action_form: ActionItemForm | None = None,
) -> IncidentPanel:
    review = incidents.get_review(ticket)
    panel = IncidentPanel(
        severity=incidents.severity(ticket),
        needs_review=incidents.needs_review(ticket),
        review=review,
        problems=incidents.problems_of(review),
    )
    if current_user.is_authenticated and services.can_work(current_user):
        panel.review_form = review_form or ReviewForm(
            formdata=None,
            timeline=review.timeline if review else "",
            root_cause=review.root_cause if review else "",
        )
        panel.action_form = action_form or ActionItemForm(formdata=None)
        panel.action_form.owner.choices = [("", "Choose…")] + [
            (str(u.id), u.name) for u in _active_users()
        ]
    return panel


@bp.app_template_global()
def open_major_incidents() -> list[Ticket]:
    """The banner's incidents: none for signed-out visitors (the sign-in page asks nothing
    of the database for them)."""
    if not current_user.is_authenticated:
        return []
    try:
        return ticket_cache.major_incidents(current_user, _banner_incidents)
    except SQLAlchemyError:
        # Every page, error pages included, shows the banner: it must not take them down.
        log.exception("the open-incident banner could not be loaded")
        db.session.rollback()
        return []


def _banner_incidents() -> list[dict[str, Any]]:
    return [
        {"id": t.id, "number": t.number, "subject": t.subject, "severity": incidents.severity(t)}
        for t in incidents.open_major_incidents(current_user)
    ]


def _invalid(ticket: Ticket, **forms: Any) -> Response:
    """The review panel again with the messages at their fields (422): alone for htmx,
    inside the whole ticket page otherwise."""
    if is_htmx():
        body = render_template("tickets/_review.html", ticket=ticket, works=True, **forms)
        response = make_response(body, 422)
        response.vary.add("HX-Request")
        return response
    return render("tickets/detail.html", None, 422, **{**detail_context(ticket), **forms})


def _back(ticket: Ticket, message: str) -> Response:
    flash(message, "success")
    return redirect_to(url_for("tickets.detail", ticket_id=ticket.id) + "#incident-review")


def _refused(exc: ServiceError) -> Response:
    return error_response(exc.status, "Not done", exc.message)


@bp.route("/<int:ticket_id>/review", methods=["POST"])
@permission_required(WORK)
def save_review(ticket_id: int) -> Response:
    ticket = get_ticket_or_404(ticket_id, current_user)
    if ticket.type != "incident":
        abort(409, "Only incidents have a post-incident review.")
    form = ReviewForm()
    if form.validate():
        try:
            incidents.save_review(
                ticket, current_user, form.timeline.data or "", form.root_cause.data or ""
            )
        except ServiceError as exc:
            if exc.status != 422:
                return _refused(exc)
            form.add_error(exc.field, exc.message)
        else:
            return _back(ticket, "The post-incident review is saved.")
    return _invalid(ticket, review_form=form)


@bp.route("/<int:ticket_id>/review/actions", methods=["POST"])
@permission_required(WORK)
def add_action_item(ticket_id: int) -> Response:
    ticket = get_ticket_or_404(ticket_id, current_user)
    if ticket.type != "incident":
        abort(409, "Only incidents have a post-incident review.")
    form = ActionItemForm()
    if form.validate():
        try:
            incidents.add_action_item(
                ticket,
                current_user,
                form.description.data or "",
                _owner(form.owner.data),
                form.due_on.data,
            )
        except ServiceError as exc:
            if exc.status != 422:
                return _refused(exc)
            form.add_error(exc.field, exc.message)
        else:
            return _back(ticket, "Action item added.")
    return _invalid(ticket, action_form=form)


def _item_or_404(ticket: Ticket, item_id: int) -> ActionItem:
    item = incidents.get_action_item(ticket, item_id)
    if item is None:
        abort(404)
    return item


@bp.route("/<int:ticket_id>/review/actions/<int:item_id>/done", methods=["POST"])
@permission_required(WORK)
def complete_action_item(ticket_id: int, item_id: int) -> Response:
    ticket = get_ticket_or_404(ticket_id, current_user)
    item = _item_or_404(ticket, item_id)
    try:
        incidents.complete_action_item(item, current_user)
    except ServiceError as exc:
        return _refused(exc)
    return _back(ticket, "Action item marked done.")


@bp.route("/<int:ticket_id>/review/actions/<int:item_id>/ticket", methods=["POST"])
@permission_required(WORK)
def action_item_to_ticket(ticket_id: int, item_id: int) -> Response:
    ticket = get_ticket_or_404(ticket_id, current_user)
    item = _item_or_404(ticket, item_id)
    try:
        filed = incidents.action_item_to_ticket(item, current_user)
    except ServiceError as exc:
        return _refused(exc)
    return _back(ticket, f"The action item is now {filed.number}.")
