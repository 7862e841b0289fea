"""Change request pages: the list, filing and editing, the change page and the
approver's inbox (the steps taken from the change page are in step_views.py).

Reading is open to every signed-in role the way access.py decides it: those with
changes:read see every change, those who may only raise changes see their own. So the
read pages declare "signed in" and leave the narrowing to `visible()` / `can_see()`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from flask import Blueprint, abort, flash, request, url_for
from flask_login import current_user
from sqlalchemy import select
from werkzeug.wrappers import Response

from .. import cache
from ..audits.services import events_for
from ..errors import Forbidden, ServiceError
from ..extensions import db
from ..security import Permission, Role, login_required, permission_required, role_has
from ..tickets.access import can_see as can_see_ticket
from ..tickets.models import Ticket
from ..tickets.queries import ticket_number
from ..timeutil import to_zone
from ..users.models import User
from ..web import error_response, redirect_to, render
from . import approvals, badges, services, workflow
from .access import get_change_or_404, is_admin, is_involved, sees_all
from .conflicts import window_to_utc
from .forms import (
    STANDARD_CHOICE,
    TYPE_CHOICES,
    ChangeForm,
    CloseForm,
    FinishForm,
    LinkTicketForm,
    ReviewForm,
    ScheduleForm,
    VoteForm,
)
from .models import (
    EDITABLE,
    STATUS_LABELS,
    STATUSES,
    TYPES,
    ChangeHistory,
    ChangeRequest,
    ConflictAcknowledgement,
)
from .queries import SORTS, ChangeFilters, list_changes
from .risk import RISKS
from .setup_models import Service, StandardTemplate

bp = Blueprint("changes", __name__, url_prefix="/changes")
for _badge in badges.GLOBALS:
    bp.add_app_template_global(_badge)
CREATE, APPROVE = Permission.CHANGES_CREATE, Permission.CHANGES_APPROVE
TEXT_FIELDS = (
    "description",
    "justification",
    "success_criteria",
    "implementation_plan",
    "rollback_plan",
)


def _require_reader() -> None:
    if not (sees_all(current_user) or role_has(current_user.role, CREATE)):
        abort(403)


def _zone() -> str:
    return current_user.timezone or "UTC"


def _local_input(value: datetime | None) -> datetime | None:
    """A stored UTC time as the naive wall-clock time a datetime-local input shows."""
    local = to_zone(value, _zone())
    return local.replace(tzinfo=None) if local else None


# -- the list --------------------------------------------------------------------------------


def _service_pairs() -> list[tuple[str, str]]:
    rows = db.session.execute(select(Service.id, Service.name).order_by(Service.name))
    return [(str(i), name) for i, name in rows]


def _list_choices() -> dict[str, list[tuple[str, str]]]:
    # Every list page asks for the same services: shared until one of them changes.
    services_ = cache.shared(Service.__tablename__, "list-choices", _service_pairs)
    return {
        "status": [("", "Any"), *((s, STATUS_LABELS[s]) for s in STATUSES)],
        "type": [("", "Any"), *((t, t.capitalize()) for t in TYPES)],
        "risk": [("", "Any"), *((r, r.capitalize()) for r in RISKS)],
        "service": [("", "Any"), *((value, label) for value, label in services_)],
        "sort": [(s, {"newest": "Newest", "window": "Window"}[s]) for s in SORTS],
    }


@bp.route("/")
@login_required
def index() -> Response:
    _require_reader()
    filters = ChangeFilters.from_args(request.args)
    return render(
        "changes/list.html",
        "results",
        page=list_changes(filters, current_user),
        filters=filters,
        choices=_list_choices(),
        approves=role_has(current_user.role, APPROVE),
    )


# -- filing and editing ---------------------------------------------------------------------


def _service_choices(current: list[Service] | None = None) -> list[tuple[str, str]]:
    active = db.session.scalars(select(Service).where(Service.is_active).order_by(Service.name))
    chosen = {s.id: s for s in [*active, *(current or [])]}
    return [(str(s.id), s.name) for s in sorted(chosen.values(), key=lambda s: s.name)]


def _implementer_choices() -> list[tuple[str, str]]:
    roles = [r.value for r in Role if role_has(r, CREATE)]
    people = db.session.execute(
        select(User.id, User.name).where(User.is_active, User.role.in_(roles)).order_by(User.name)
    )
    return [("", "Not named yet"), *((str(i), n) for i, n in people)]


def _choices(form: ChangeForm, change: ChangeRequest | None = None) -> None:
    form.services.choices = _service_choices(change.services if change else None)
    form.implementer.choices = _implementer_choices()
    if change is not None and change.type == "standard":
        form.type.choices = [STANDARD_CHOICE, *TYPE_CHOICES]


def _window(form: ChangeForm | ScheduleForm) -> tuple[datetime, datetime] | None:
    start, end = form.window_start.data, form.window_end.data
    if start is None or end is None:
        return None
    return window_to_utc(start, end, _zone())


def _linked_tickets(form: ChangeForm) -> list[Ticket]:
    found = []
    for token in form.ticket_tokens():
        ticket = db.session.get(Ticket, ticket_number(token) or 0)
        if ticket is None or not can_see_ticket(current_user, ticket):
            raise ServiceError(f"{token[:30]} is not a ticket you can see.", field="tickets")
        found.append(ticket)
    return found


def _picked_services(form: ChangeForm) -> list[Service]:
    ids = [int(i) for i in form.services.data or []]
    return list(db.session.scalars(select(Service).where(Service.id.in_(ids)))) if ids else []


def _picked_user(value: str | None) -> User | None:
    return db.session.get(User, int(value)) if value else None


def _texts(form: ChangeForm) -> dict[str, Any]:
    return {name: getattr(form, name).data or "" for name in TEXT_FIELDS}


def _template_from_args() -> StandardTemplate | None:
    raw = request.args.get("template", "")
    if not raw:
        return None
    template = (
        db.session.get(StandardTemplate, int(raw)) if raw.isdigit() and len(raw) < 10 else None
    )
    if template is None or not template.is_active:
        abort(404)
    return template


@bp.route("/new", methods=["GET", "POST"])
@permission_required(CREATE)
def new() -> Response:
    template = _template_from_args()
    form = ChangeForm()
    _choices(form)
    status = 200
    if request.method == "POST":
        status = 422
        if form.validate():
            try:
                change = services.create_change(
                    current_user,
                    form.title.data,
                    form.type.data,
                    **_texts(form),
                    impact=int(form.impact.data),
                    likelihood=int(form.likelihood.data),
                    services=_picked_services(form),
                    implementer=_picked_user(form.implementer.data),
                    window=_window(form),
                    tickets=_linked_tickets(form),
                    template=template,
                )
            except ServiceError as exc:
                if exc.status == 403:
                    return _refused(exc)
                form.add_error(exc.field, exc.message)
                status = exc.status
            else:
                flash(
                    f"{change.number} is saved as a draft. Submit it when it is ready.", "success"
                )
                return redirect_to(url_for("changes.detail", change_id=change.id))
    templates = db.session.scalars(
        select(StandardTemplate).where(StandardTemplate.is_active).order_by(StandardTemplate.name)
    ).all()
    return render(
        "changes/new.html", "form", status, form=form, template=template, templates=templates
    )


def _allowed(check: Callable[[ChangeRequest, User], None], change: ChangeRequest) -> None:
    """Ask the service's own rule who may act, before reading the form: a refusal is the
    same 403 whatever was sent."""
    try:
        check(change, current_user)
    except Forbidden:
        abort(403)


@bp.route("/<int:change_id>/edit", methods=["GET", "POST"])
@permission_required(CREATE)
def edit(change_id: int) -> Response:
    change = get_change_or_404(change_id, current_user)
    _allowed(services.require_owner, change)
    if change.status not in EDITABLE:
        return error_response(
            409, "Not editable", f"A {change.status_label.lower()} change cannot be edited."
        )
    if request.method == "GET":
        form = ChangeForm(
            data={
                "type": change.type,
                "title": change.title,
                "impact": str(change.impact),
                "likelihood": str(change.likelihood),
                "services": [str(s.id) for s in change.services],
                "implementer": str(change.implementer_id or ""),
                "window_start": _local_input(change.window_start),
                "window_end": _local_input(change.window_end),
                **{name: getattr(change, name) for name in TEXT_FIELDS},
            }
        )
        _choices(form, change)
        return render("changes/edit.html", "form", change=change, form=form)
    form = ChangeForm()
    _choices(form, change)
    status = 422
    if form.validate():
        try:
            services.update_change(
                change,
                current_user,
                title=form.title.data,
                type_=form.type.data,
                **_texts(form),
                impact=int(form.impact.data),
                likelihood=int(form.likelihood.data),
                services=_picked_services(form),
                window=_window(form),
            )
            implementer = _picked_user(form.implementer.data)
            if (implementer.id if implementer else None) != change.implementer_id:
                services.assign_implementer(change, implementer, current_user)
        except ServiceError as exc:
            form.add_error(exc.field, exc.message)
            status = exc.status
        else:
            flash(f"{change.number} is saved.", "success")
            return redirect_to(url_for("changes.detail", change_id=change.id))
    return render("changes/edit.html", "form", status, change=change, form=form)


# -- the change page ------------------------------------------------------------------------

STEP_LABELS = {
    "submitted": "Submit",
    "in_review": "Review",
    "approved": "Approval",
    "rejected": "Rejection",
    "scheduled": "Schedule",
    "implementing": "Start implementing",
    "validating": "Start validating",
    "completed": "Complete",
    "failed": "Mark failed",
    "closed": "Close",
}


def _next_steps(change: ChangeRequest) -> list[dict[str, Any]]:
    """The moves the table allows from here and what each still needs; moves that are
    not this change's path (pre-approved or not) are left out."""
    steps = []
    for target in workflow.allowed_moves(change.status):
        unmet = workflow.missing(change, target)
        if any(need.refusal for need in unmet):
            continue
        needs = [f"{need.verb} {need.what(change)}" for need in unmet]
        steps.append({"target": target, "label": STEP_LABELS[target], "needs": needs})
    return steps


def detail_context(change: ChangeRequest, **extra: Any) -> dict[str, Any]:
    user = current_user
    owner = is_admin(user) or user.id == change.requester_id
    involved = is_involved(user, change)
    approver = role_has(user.role, APPROVE) and user.id not in (
        change.requester_id,
        change.implementer_id,
    )
    waiting = approvals.waiting_on(change) if change.status == "in_review" else []
    rounds: dict[int, list[Any]] = {}
    for ballot in sorted(change.votes, key=lambda v: (-v.round, v.id)):
        rounds.setdefault(ballot.round, []).append(ballot)
    history = db.session.scalars(
        select(ChangeHistory).where(ChangeHistory.change_id == change.id).order_by(ChangeHistory.id)
    ).all()
    acks = db.session.scalars(
        select(ConflictAcknowledgement)
        .where(ConflictAcknowledgement.change_id == change.id)
        .order_by(ConflictAcknowledgement.id)
    ).all()
    status = change.status
    context: dict[str, Any] = {
        "change": change,
        "requirement": approvals.requirement(change),
        "tally": approvals.tally(change),
        "waiting": waiting,
        "rounds": rounds,
        "history": history,
        "events": events_for("changerequest", change.id, limit=100),
        "acks": acks,
        "steps": _next_steps(change),
        "owner": owner,
        "involved": involved,
        "can_edit": owner and status in EDITABLE,
        "can_vote": status == "in_review" and any(u.id == user.id for u in waiting),
        "can_review": change.is_emergency
        and approver
        and status in ("validating", "completed", "failed"),
        "clashes": [],
        "freezes": [],
        "vote_form": VoteForm(formdata=None),
        "schedule_form": ScheduleForm(
            formdata=None,
            data={
                "window_start": _local_input(change.window_start),
                "window_end": _local_input(change.window_end),
            },
        ),
        "finish_form": FinishForm(
            formdata=None,
            data={"validation_results": change.validation_results, "outcome": change.outcome},
        ),
        "review_form": ReviewForm(
            formdata=None,
            data={
                "findings": change.review.findings if change.review else "",
                "emergency_justified": change.review.emergency_justified if change.review else True,
            },
        ),
        "close_form": CloseForm(formdata=None, data={"lessons_learned": change.lessons_learned}),
        "link_form": LinkTicketForm(formdata=None),
        "zone": _zone(),
    }
    context.update(extra)
    return context


@bp.route("/<int:change_id>")
@login_required
def detail(change_id: int) -> Response:
    _require_reader()
    change = get_change_or_404(change_id, current_user)
    return render("changes/detail.html", None, **detail_context(change))


def _refused(exc: ServiceError) -> Response:
    return error_response(exc.status, "Not done", exc.message)


# Routes of their own module, registered on the same blueprint.
from . import inbox_views, step_views, ticket_views  # noqa: E402,F401
