"""The printable record of a change: its PDF, built by a job, with progress while it
builds (routes on the changes blueprint)."""

from __future__ import annotations

import logging

from flask import abort, render_template, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from .. import job_records
from ..downloads import stored_file_response
from ..security import login_required
from ..web import is_htmx, redirect_to, render
from . import pdf
from .access import get_change_or_404
from .models import ChangeRequest
from .views import bp

log = logging.getLogger(__name__)


@bp.app_template_global()
def change_pdf_record(change: ChangeRequest) -> job_records.JobRecord | None:
    """The newest PDF of `change` for the change page (anyone who sees the change may
    download it, so it need not be the viewer's own)."""
    return job_records.latest_for(pdf.KIND, pdf.SUBJECT, change.id)


def _record_or_404(change: ChangeRequest, record_id: int) -> job_records.JobRecord:
    return job_records.get_for_subject_or_404(record_id, pdf.KIND, pdf.SUBJECT, change.id)


# Signed in, then the change's own check: requesters (CHANGES_CREATE, not CHANGES_READ)
# see their own changes and so their PDFs; get_change_or_404 decides, as on the change page.
@bp.route("/<int:change_id>/pdf", methods=["POST"])
@login_required
def request_pdf(change_id: int) -> Response:
    change = get_change_or_404(change_id, current_user)
    row = pdf.request_pdf(change, current_user)
    if is_htmx():
        return render_template("changes/_record_status.html", change=change, record=row)
    return redirect_to(url_for("changes.pdf_status", change_id=change.id, record_id=row.id))


@bp.route("/<int:change_id>/pdf/<int:record_id>")
@login_required
def pdf_status(change_id: int, record_id: int) -> Response:
    change = get_change_or_404(change_id, current_user)
    row = _record_or_404(change, record_id)
    return render("changes/_record_page.html", "record", change=change, record=row)


@bp.route("/<int:change_id>/pdf/<int:record_id>/download")
@login_required
def download_pdf(change_id: int, record_id: int) -> Response:
    change = get_change_or_404(change_id, current_user)
    row = _record_or_404(change, record_id)
    if row.status != "done" or not row.file_key:
        abort(404, "This PDF is not ready.")
    filename = row.filename or f"{change.number}.pdf"
    try:
        response = stored_file_response(row.file_key, filename, "application/pdf")
    except FileNotFoundError:
        log.error("PDF record %s of change %s has no stored file", row.id, change.id)
        abort(404, "The file is no longer stored. Ask for a new PDF.")
    pdf.record_download(change, row, current_user)
    return response
