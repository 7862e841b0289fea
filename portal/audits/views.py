"""The audit log's pages: the viewer (filters and keyset paging in the query string) and
one event with its before/after values. Auditors and admins only (audits:read)."""

from __future__ import annotations

from flask import Blueprint, current_app, request, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from ..security import Permission, can, permission_required
from ..web import render
from .queries import (
    AuditFilters,
    Cursor,
    events_page,
    field_changes,
    get_event_or_404,
    other_data,
    shown_value,
)

bp = Blueprint("audits", __name__, url_prefix="/audits")

# The object pages an event can link to: its target type → (endpoint, its argument, who
# may open it). Other types link only to their own events in the log.
OBJECT_PAGES = {
    "user": ("users.user_detail", "user_id", Permission.USERS_MANAGE),
    "ticket": ("tickets.detail", "ticket_id", Permission.TICKETS_READ),
    "changerequest": ("changes.detail", "change_id", Permission.CHANGES_READ),
}


def _viewer_zone() -> str:
    return current_user.timezone or current_app.config["SETTINGS"].TIMEZONE


@bp.app_template_global()
def audit_object_url(target_type: str | None, target_id: str | None) -> str | None:
    """The page of an event's object, when there is one the viewer may open."""
    page = OBJECT_PAGES.get(target_type or "")
    if page is None or not (target_id or "").isdigit() or not can(page[2]):
        return None
    number = int(target_id or 0)
    return url_for(page[0], **{page[1]: number}) if 0 < number < 2**31 else None


@bp.route("/")
@permission_required(Permission.AUDITS_READ)
def index() -> Response:
    filters = AuditFilters.from_args(request.args, zone=_viewer_zone())
    cursor = Cursor.from_args(request.args)
    return render(
        "audits/list.html",
        "results",
        filters=filters,
        page=events_page(filters, cursor),
        problems=[*filters.problems, *cursor.problems],
    )


@bp.route("/<int:event_id>")
@permission_required(Permission.AUDITS_READ)
def detail(event_id: int) -> Response:
    event = get_event_or_404(event_id)
    data = event.data if isinstance(event.data, dict) else {"data": event.data}
    return render(
        "audits/detail.html",
        event=event,
        changes=field_changes(data),
        other=other_data(data),
        shown=shown_value,
        object_url=audit_object_url(event.target_type, event.target_id),
    )
