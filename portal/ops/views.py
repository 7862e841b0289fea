"""The home page, health and version endpoints, and the admin Outbox."""

from __future__ import annotations

from flask import Blueprint, abort, jsonify, request
from werkzeug.wrappers import Response

from .. import __version__
from ..extensions import db
from ..mail import OutboxMessage
from ..paging import paginate
from ..security import Permission, login_required, permission_required, public
from ..web import render
from .health import health

bp = Blueprint("ops", __name__)
OUTBOX_STATUSES = ("queued", "sending", "sent", "retrying", "failed", "held")


@bp.route("/")
@login_required
def home() -> Response:
    return render("ops/home.html")


@bp.route("/api/health")
@public
def api_health() -> tuple[Response, int]:
    result = health()
    return jsonify(result), 200 if result["status"] == "ok" else 503


@bp.route("/api/version")
@public
def api_version() -> Response:
    return jsonify(name="ops-portal", version=__version__)


@bp.route("/outbox/")
@permission_required(Permission.USERS_MANAGE)
def outbox() -> Response:
    status = request.args.get("status", "")
    status = status if status in OUTBOX_STATUSES else ""
    try:
        page_no = max(1, int(request.args.get("page", 1)))
    except ValueError:
        page_no = 1
    stmt = db.select(OutboxMessage).order_by(OutboxMessage.id.desc())
    if status:
        stmt = stmt.where(OutboxMessage.status == status)
    return render(
        "ops/outbox.html",
        "results",
        page=paginate(stmt, page_no),
        status=status,
        statuses=OUTBOX_STATUSES,
    )


@bp.route("/outbox/<int:message_id>")
@permission_required(Permission.USERS_MANAGE)
def outbox_message(message_id: int) -> Response:
    message = db.session.get(OutboxMessage, message_id)
    if message is None:
        abort(404)
    return render("ops/outbox_message.html", message=message)
