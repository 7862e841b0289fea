"""Routes of the ticket list besides the list itself (views.index): saving and deleting
one's views of it, and changing many tickets at once."""

from __future__ import annotations

from typing import Any

from flask import flash, request, url_for
from flask_login import current_user
from werkzeug.wrappers import Response
from wtforms import StringField
from wtforms.validators import DataRequired, Length

from .. import cache
from ..errors import ServiceError
from ..forms import PortalForm
from ..security import Permission, permission_required
from ..users.models import User
from ..web import error_response, redirect_to
from . import list_actions
from .extra_models import SavedView
from .views import bp, list_page

READ, WORK = Permission.TICKETS_READ, Permission.TICKETS_WORK


class SaveViewForm(PortalForm):
    # The query string travels beside the form: it is re-serialised, never validated as text.
    name = StringField(
        "Save this view as",
        validators=[
            DataRequired("Name the view."),
            Length(
                max=list_actions.MAX_VIEW_NAME,
                message=f"Use at most {list_actions.MAX_VIEW_NAME} characters.",
            ),
        ],
    )


@bp.app_template_global()
def saved_views() -> list[dict[str, Any]]:
    """The signed-in person's saved views (id, name, query), for the list page. Every
    visit to the list asks and views rarely change, so the answer is shared (see
    portal/cache.py) until a saved view is written, sparing the list a query."""
    if not current_user.is_authenticated:
        return []
    user = current_user._get_current_object()
    return cache.shared(SavedView.__tablename__, f"user:{user.id}", lambda: _views_of(user))


def _views_of(user: User) -> list[dict[str, Any]]:
    return [{"id": v.id, "name": v.name, "query": v.query} for v in list_actions.views_of(user)]


def _list_url(query: str) -> str:
    """The list with the filters `query` names: built from recognised filters only, so it
    is always a local URL whatever was sent."""
    return url_for("tickets.index", **list_actions.filters_from_query(query).as_args())


@bp.route("/views", methods=["POST"])
@permission_required(READ)
def save_view() -> Response:
    form = SaveViewForm()
    query = request.form.get("query", "")
    if form.validate():
        try:
            view = list_actions.save_view(current_user, form.name.data, query)
        except ServiceError as exc:
            form.add_error(exc.field, exc.message)
        else:
            flash(f"View “{view.name}” saved.", "success")
            return redirect_to(_list_url(view.query))
    filters = list_actions.filters_from_query(query)
    return list_page(filters, "save_view", 422, view_form=form)


@bp.route("/views/<int:view_id>/delete", methods=["POST"])
@permission_required(READ)
def delete_view(view_id: int) -> Response:
    view = list_actions.get_view_or_404(view_id, current_user)
    name = view.name
    list_actions.delete_view(view, current_user)
    flash(f"View “{name}” deleted.", "success")
    return redirect_to(_list_url(request.form.get("next", "")))


def _ticket_ids(values: list[str]) -> list[int]:
    """The well-formed ids among `values`; a malformed one cannot name a ticket."""
    return [int(v) for v in values if v.isdigit() and 0 < len(v) <= 9 and int(v) > 0]


@bp.route("/bulk", methods=["POST"])
@permission_required(WORK)
def bulk_update() -> Response:
    values = request.form.getlist("ids")
    if len(values) > list_actions.BULK_LIMIT:
        return error_response(
            422,
            "Not done",
            f"Choose at most {list_actions.BULK_LIMIT} tickets at a time "
            f"({len(values)} were selected).",
        )
    ids = _ticket_ids(values)
    if not ids:
        return error_response(422, "Not done", "Choose at least one ticket.")
    try:
        change = list_actions.bulk_change(
            request.form.get("action", ""), request.form.get("value", "")
        )
    except ServiceError as exc:
        return error_response(422, "Not done", exc.message)
    result = list_actions.bulk_update(ids, change, current_user)
    what = change.description[:1].upper() + change.description[1:]
    flash(f"{what}: {result.summary()}", _category(result))
    return redirect_to(_list_url(request.form.get("next", "")))


def _category(result: list_actions.BulkResult) -> str:
    if not result.skipped:
        return "success"
    return "warning" if result.updated else "danger"
