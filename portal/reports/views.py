"""Exports' pages: ask for one from a list, watch it build, download it, cancel or
retry it, and "My exports"; the monthly report's page, which asks for one the same way."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import parse_qsl

from flask import Blueprint, abort, flash, request, url_for
from flask_login import current_user
from redis.exceptions import RedisError
from rq.exceptions import NoSuchJobError
from rq.job import Job
from sqlalchemy import select
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response

from .. import jobs
from ..downloads import stored_file_response
from ..errors import ServiceError
from ..extensions import db
from ..paging import paginate
from ..query_args import positive_int
from ..security import Permission, login_required, permission_required
from ..web import error_response, redirect_to, render
from . import services
from .models import Export
from .sources import KINDS

log = logging.getLogger(__name__)

bp = Blueprint("reports", __name__, url_prefix="/reports")


def get_export_or_404(export_id: int, user) -> Export:  # type: ignore[no-untyped-def]
    """The export, only for its owner or an admin: anyone else's link is not found (so
    an id says nothing about whether it exists)."""
    export = db.session.get(Export, export_id) if 0 < export_id < 2**31 else None
    if export is None or not (export.requested_by_id == user.id or user.role == "admin"):
        abort(404)
    return export


@bp.app_template_global()
def export_button_args(kind: str) -> dict[str, str]:
    """What a list's Export button posts: the list's kind and its query string as shown."""
    return {"kind": kind, "query": request.query_string.decode("latin-1")}


def _running_meta(export: Export) -> dict[str, Any]:
    """The job's own progress while it runs (kept in Redis, where the worker writes it),
    or nothing when it is not running or Redis no longer has it."""
    if export.status != "running" or not export.job_id:
        return {}
    try:
        return Job.fetch(export.job_id, connection=jobs.connection()).get_meta(refresh=True)
    except (NoSuchJobError, RedisError):
        return {}


@bp.app_template_global()
def export_progress(export: Export) -> int:
    """Rows (or a document's parts) written so far: the job's own count while it runs,
    else the row's."""
    return int(_running_meta(export).get("done", export.rows_done))


@bp.app_template_global()
def export_total(export: Export) -> int:
    """A document's parts to build, once its job has said (0 before)."""
    return int(_running_meta(export).get("total", 0))


@bp.app_template_global()
def document_percent(export: Export, done: int) -> int:
    if export.status == "done":
        return 100
    total = export_total(export)
    return min(99, done * 100 // total) if total else 0


@bp.route("/exports")
@login_required
def my_exports() -> Response:
    page = min(positive_int(request.args.get("page")) or 1, 100_000)
    stmt = (
        select(Export)
        .where(Export.requested_by_id == current_user.id)
        .order_by(Export.created_at.desc(), Export.id.desc())
    )
    return render("reports/exports.html", "exports", page=paginate(stmt, page), sources=KINDS)


@bp.route("/exports", methods=["POST"])
@login_required
def start_export() -> Response:
    kind = request.form.get("kind", "")
    args = MultiDict(parse_qsl(request.form.get("query", "")[:4000]))
    try:
        export = services.request_export(kind, args, current_user)
    except ServiceError as exc:
        return error_response(exc.status, "Not exported", exc.message)
    return redirect_to(url_for("reports.export_status", export_id=export.id))


@bp.route("/exports/<int:export_id>")
@login_required
def export_status(export_id: int) -> Response:
    export = get_export_or_404(export_id, current_user)
    source = KINDS[export.kind]
    return render("reports/export.html", "status", export=export, source=source)


@bp.route("/exports/<int:export_id>/cancel", methods=["POST"])
@login_required
def cancel_export(export_id: int) -> Response:
    export = get_export_or_404(export_id, current_user)
    try:
        services.cancel_export(export, current_user)
    except ServiceError as exc:
        return error_response(exc.status, "Not cancelled", exc.message)
    flash("The export is cancelled.", "success")
    return redirect_to(url_for("reports.export_status", export_id=export.id))


@bp.route("/exports/<int:export_id>/retry", methods=["POST"])
@login_required
def retry_export(export_id: int) -> Response:
    export = get_export_or_404(export_id, current_user)
    try:
        services.retry_export(export, current_user)
    except ServiceError as exc:
        return error_response(exc.status, "Not retried", exc.message)
    return redirect_to(url_for("reports.export_status", export_id=export.id))


@bp.route("/exports/<int:export_id>/download")
@login_required
def download_export(export_id: int) -> Response:
    export = get_export_or_404(export_id, current_user)
    if not services.may_download(export, current_user):
        abort(403, "You may no longer download this export.")
    if export.status == "expired":
        abort(410, "This export has expired and its file was deleted. Ask for a new one.")
    if export.status != "done" or not export.file_key:
        abort(404, "This export is not ready.")
    try:
        response = stored_file_response(
            export.file_key, export.filename or "export", KINDS[export.kind].mimetype
        )
    except FileNotFoundError:
        log.error("export %s has no stored file", export.id)
        abort(410, "The file is no longer stored. Ask for a new export.")
    services.record_download(export, current_user)
    return response


MONTHLY_KIND = "monthly_report"
RECENT_REPORTS = 10


def _monthly_page(month: str, message: str = "", status: int = 200) -> Response:
    recent = db.session.scalars(
        select(Export)
        .where(Export.requested_by_id == current_user.id, Export.kind == MONTHLY_KIND)
        .order_by(Export.created_at.desc(), Export.id.desc())
        .limit(RECENT_REPORTS)
    ).all()
    return render(
        "reports/monthly.html", "monthly_form", status, month=month, message=message, recent=recent
    )


@bp.route("/monthly")
@permission_required(Permission.REPORTS_RUN)
def monthly() -> Response:
    """The month picker, on last month unless a link names one (an export's page does)."""
    default = f"{services.last_month(services.zone_of(current_user)):%Y-%m}"
    month = request.args.get("month", "")[:20] or default
    return _monthly_page(month)


@bp.route("/monthly", methods=["POST"])
@permission_required(Permission.REPORTS_RUN)
def request_monthly() -> Response:
    month = request.form.get("month", "")[:20]
    try:
        export = services.request_monthly_report(month, current_user)
    except ServiceError as exc:
        return _monthly_page(month, exc.message, exc.status)
    return redirect_to(url_for("reports.export_status", export_id=export.id))


from . import report_views  # noqa: E402,F401
