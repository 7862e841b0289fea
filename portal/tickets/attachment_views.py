"""A ticket's files: the upload form's post and the download (routes of the tickets
blueprint, see views.py)."""

from __future__ import annotations

import logging

from flask import abort, flash, url_for
from flask_login import current_user
from flask_wtf.file import FileField, FileRequired
from werkzeug.wrappers import Response
from wtforms import BooleanField

from .. import storage
from ..downloads import stored_file_response
from ..errors import ServiceError
from ..forms import PortalForm
from ..security import Permission, permission_required
from ..web import error_response, redirect_to
from .access import can_reply, get_ticket_or_404
from .attachments import add_attachment, attachments_for, get_attachment_or_404
from .extra_models import TicketAttachment
from .models import Ticket
from .views import bp

log = logging.getLogger(__name__)


class AttachmentForm(PortalForm):
    # Ids of their own: the reply form on the same page has an `internal` checkbox too.
    file = FileField(
        "Attach a file", validators=[FileRequired("Choose a file to attach.")], id="attachment-file"
    )
    internal = BooleanField("Internal (hidden from the requester)", id="attachment-internal")


@bp.app_template_global()
def ticket_attachments(ticket: Ticket) -> list[TicketAttachment]:
    """The ticket page's file list, with the same visibility rule as the download."""
    return attachments_for(ticket, current_user)


@bp.app_template_filter("file_size")
def file_size(size: int) -> str:
    return storage.human_size(size)


@bp.app_template_global()
def attachment_form() -> AttachmentForm:
    return AttachmentForm()


@bp.route("/<int:ticket_id>/attachments", methods=["POST"])
@permission_required(Permission.TICKETS_READ)
def upload_attachment(ticket_id: int) -> Response:
    ticket = get_ticket_or_404(ticket_id, current_user)
    if not can_reply(current_user, ticket):
        abort(403)
    form = AttachmentForm()
    if not form.validate():
        messages = [m for errors in form.errors.values() for m in errors]
        return error_response(422, "Not attached", " ".join(map(str, messages)))
    try:
        attachment = add_attachment(
            ticket, current_user, form.file.data, internal=bool(form.internal.data)
        )
    except ServiceError as exc:
        return error_response(exc.status, "Not attached", exc.message)
    flash(f"{attachment.filename} is attached to {ticket.number}.", "success")
    return redirect_to(url_for("tickets.detail", ticket_id=ticket.id))


@bp.route("/<int:ticket_id>/attachments/<int:attachment_id>")
@permission_required(Permission.TICKETS_READ)
def download_attachment(ticket_id: int, attachment_id: int) -> Response:
    ticket = get_ticket_or_404(ticket_id, current_user)
    attachment = get_attachment_or_404(ticket, attachment_id, current_user)
    try:
        return stored_file_response(
            attachment.storage_key, attachment.filename, attachment.content_type
        )
    except FileNotFoundError:
        log.error("attachment %s of ticket %s has no stored file", attachment.id, ticket.id)
        abort(404, "The file is no longer stored.")
