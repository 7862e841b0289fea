"""Ticket pages: the list (with its htmx fragment), filing, the ticket page and its actions."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, request, url_for
from flask_login import current_user
from sqlalchemy import select
from werkzeug.wrappers import Response

from ..errors import ServiceError
from ..extensions import db
from ..security import Permission, permission_required
from ..users.models import User
from ..web import error_response, redirect_to, render
from . import choices, services, sla
from .access import can_reply, can_see_internal, get_ticket_or_404
from .badges import BADGES
from .forms import AssignForm, EscalateForm, FieldsForm, NewTicketForm, ReplyForm, StatusForm
from .models import SLA_STATES, STATUSES, TYPES
from .queries import SORTS, TicketFilters, list_tickets, status_counts
from .setup_models import PRIORITIES, Category, Team
from .timeline import timeline
from .workflow import allowed_moves

bp = Blueprint("tickets", __name__, url_prefix="/tickets")
READ, WORK = Permission.TICKETS_READ, Permission.TICKETS_WORK
for _name, _badge in BADGES.items():
    bp.add_app_template_global(_badge, _name)


def _label(value: str) -> str:
    return value.replace("_", " ").capitalize()


def list_choices(team_pairs: choices.Pairs, people: choices.Pairs) -> dict[str, Any]:
    """The (value, label) pairs of the list's filter and bulk-action selects."""
    return {
        "status": [("", "Any"), ("open", "Open"), *((s, _label(s)) for s in STATUSES)],
        "priority": [("", "Any"), *((p, p.capitalize()) for p in PRIORITIES)],
        "type": [("", "Any"), *((t, t.capitalize()) for t in TYPES)],
        "team": [("", "Any"), *team_pairs],
        "assignee": [("", "Anyone"), ("none", "Unassigned"), *people],
        "sla": [("", "Any"), *((s, s.replace("_", " ")) for s in SLA_STATES)],
        "sort": [(s, "Best match" if s == "relevance" else s.capitalize()) for s in SORTS],
        "bulk": [
            ("Assign to", [("assign:none", "Nobody"), *((f"assign:{v}", n) for v, n in people)]),
            ("Status", [(f"status:{s}", _label(s)) for s in STATUSES]),
            ("Priority", [(f"priority:{p}", p.capitalize()) for p in PRIORITIES]),
            ("Team", [(f"team:{v}", n) for v, n in team_pairs]),
        ],
    }


def list_page(
    filters: TicketFilters, fragment: str = "results", status: int = 200, **extra: Any
) -> Response:
    """The ticket list page, or its `fragment` block for htmx (the results, or a form)."""
    workers = choices.workers() if services.can_work(current_user) else []
    counts = status_counts(filters, current_user)
    return render(
        "tickets/list.html",
        fragment,
        status,
        page=list_tickets(filters, current_user, counts),
        filters=filters,
        counts=counts,
        workers=workers,
        choices=list_choices(choices.teams(), workers),
        **extra,
    )


def _assignee_choices() -> list[tuple[str, str]]:
    return [("", "Unassigned"), *choices.workers()]


@bp.route("/")
@permission_required(READ)
def index() -> Response:
    return list_page(TicketFilters.from_args(request.args))


@bp.route("/new", methods=["GET", "POST"])
@permission_required(Permission.TICKETS_CREATE)
def new() -> Response:
    form = NewTicketForm()
    if request.method == "POST":
        if form.validate():
            try:
                ticket = services.create_ticket(
                    current_user,
                    form.subject.data,
                    form.description.data or "",
                    form.type.data,
                    form.priority.data or None,
                )
            except ServiceError as exc:
                form.add_error(exc.field, exc.message)
            else:
                flash(f"{ticket.number} is filed with {ticket.team.name}.", "success")
                return redirect_to(url_for("tickets.detail", ticket_id=ticket.id))
        return render("tickets/new.html", "form", 422, form=form)
    return render("tickets/new.html", "form", form=form)


def detail_context(ticket, **forms):  # type: ignore[no-untyped-def]
    works = services.can_work(current_user)
    context = {
        "ticket": ticket,
        "entries": timeline(ticket, current_user),
        "clocks": sla.clocks(ticket),
        "works": works,
        "can_reply": can_reply(current_user, ticket),
        "shows_internal": can_see_internal(current_user),
        "reply_form": forms.get("reply_form") or ReplyForm(),
        "moves": allowed_moves(ticket.status),
    }
    if works:
        assign_form = forms.get("assign_form") or AssignForm(assignee=str(ticket.assignee_id or ""))
        assign_form.assignee.choices = _assignee_choices()
        fields_form = forms.get("fields_form") or FieldsForm(
            priority=ticket.priority,
            team=str(ticket.team_id or ""),
            category=str(ticket.category_id or ""),
        )
        _field_choices(fields_form)
        context.update(
            assign_form=assign_form,
            fields_form=fields_form,
            status_form=StatusForm(),
            escalate_form=forms.get("escalate_form") or EscalateForm(),
        )
    return context


def _field_choices(form: FieldsForm) -> None:
    form.team.choices = choices.teams()
    form.category.choices = [("", "—")] + [
        (str(c.id), c.name) for c in db.session.scalars(select(Category).order_by(Category.name))
    ]


@bp.route("/<int:ticket_id>")
@permission_required(READ)
def detail(ticket_id: int) -> Response:
    ticket = get_ticket_or_404(ticket_id, current_user)
    return render("tickets/detail.html", None, **detail_context(ticket))


def _back(ticket_id: int, message: str) -> Response:
    flash(message, "success")
    return redirect_to(url_for("tickets.detail", ticket_id=ticket_id))


def _refused(exc: ServiceError) -> Response:
    return error_response(exc.status, "Not done", exc.message)


@bp.route("/<int:ticket_id>/replies", methods=["POST"])
@permission_required(READ)
def reply(ticket_id: int) -> Response:
    ticket = get_ticket_or_404(ticket_id, current_user)
    if not can_reply(current_user, ticket):
        abort(403)
    form = ReplyForm()
    if not form.validate():
        return render(
            "tickets/detail.html", "reply_form", 422, **detail_context(ticket, reply_form=form)
        )
    try:
        services.add_reply(ticket, current_user, form.body.data, bool(form.internal.data))
    except ServiceError as exc:
        return _refused(exc)
    return _back(ticket.id, "Internal note added." if form.internal.data else "Reply sent.")


@bp.route("/<int:ticket_id>/status", methods=["POST"])
@permission_required(WORK)
def change_status(ticket_id: int) -> Response:
    ticket = get_ticket_or_404(ticket_id, current_user)
    form = StatusForm()
    if not form.validate():
        return error_response(422, "Not done", "Choose one of the listed statuses.")
    try:
        services.change_status(ticket, form.status.data, current_user)
    except ServiceError as exc:
        return _refused(exc)
    return _back(ticket.id, f"{ticket.number} is now {ticket.status_label.lower()}.")


@bp.route("/<int:ticket_id>/assign", methods=["POST"])
@permission_required(WORK)
def assign(ticket_id: int) -> Response:
    ticket = get_ticket_or_404(ticket_id, current_user)
    form = AssignForm()
    form.assignee.choices = _assignee_choices()
    if not form.validate():
        return error_response(422, "Not done", "Choose one of the listed people.")
    assignee = db.session.get(User, int(form.assignee.data)) if form.assignee.data else None
    try:
        services.assign(ticket, assignee, current_user)
    except ServiceError as exc:
        return _refused(exc)
    who = assignee.name if assignee else "nobody"
    return _back(ticket.id, f"{ticket.number} is assigned to {who}.")


@bp.route("/<int:ticket_id>/fields", methods=["POST"])
@permission_required(WORK)
def update_fields(ticket_id: int) -> Response:
    ticket = get_ticket_or_404(ticket_id, current_user)
    form = FieldsForm()
    _field_choices(form)
    if not form.validate():
        return error_response(422, "Not done", "Choose from the listed values.")
    team = db.session.get(Team, int(form.team.data)) if form.team.data else None
    category = db.session.get(Category, int(form.category.data)) if form.category.data else None
    try:
        services.update_fields(ticket, current_user, form.priority.data, team, category)
    except ServiceError as exc:
        return _refused(exc)
    return _back(ticket.id, f"{ticket.number} is updated.")


@bp.route("/<int:ticket_id>/escalate", methods=["POST"])
@permission_required(WORK)
def escalate(ticket_id: int) -> Response:
    ticket = get_ticket_or_404(ticket_id, current_user)
    form = EscalateForm()
    if not form.validate():
        return render(
            "tickets/detail.html",
            "escalate_form",
            422,
            **detail_context(ticket, escalate_form=form),
        )
    try:
        team = services.escalate(ticket, form.reason.data, current_user)
    except ServiceError as exc:
        return _refused(exc)
    return _back(ticket.id, f"{ticket.number} is escalated to {ticket.level} ({team.name}).")


# Routes of their own modules, registered on the same blueprint.
from . import attachment_views, incident_views, list_views  # noqa: E402,F401
