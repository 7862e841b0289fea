"""Files attached to a ticket: who may add and see them, and what is kept of each.

The bytes go to portal/storage.py under a key it generates; the row keeps the
name the uploader gave (cleaned, for display and for the download header
only), a content type from an allow-list, the size and the SHA-256.
"""

from __future__ import annotations

import re
import unicodedata

from flask import abort, current_app
from sqlalchemy import select
from werkzeug.datastructures import FileStorage

from .. import jobs, storage
from ..audits import record
from ..errors import Conflict, Forbidden, ServiceError
from ..extensions import db
from ..users.models import User
from .access import can_reply, can_see, can_see_internal
from .extra_models import TicketAttachment
from .models import Ticket
from .services import can_work

STORAGE_PREFIX = "attachments"
FALLBACK_NAME = "attachment"
MAX_NAME = 255
OCTET_STREAM = "application/octet-stream"
# Types a browser may be told as-is. Anything else (text/html, image/svg+xml, scripts)
# could run in the portal's origin if a browser ever rendered it, so it is served as
# opaque bytes; the browser's claim is never trusted beyond this list.
SAFE_TYPES = frozenset(
    {
        "image/png",
        "image/jpeg",
        "image/gif",
        "application/pdf",
        "text/plain",
        "text/csv",
        "application/zip",
        "application/x-zip-compressed",
        "application/msword",
        "application/vnd.ms-excel",
        "application/vnd.ms-powerpoint",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "application/vnd.oasis.opendocument.text",
        "application/vnd.oasis.opendocument.spreadsheet",
        "application/vnd.oasis.opendocument.presentation",
    }
)
# Control, format (bidi overrides that disguise an extension, zero-width), surrogate,
# private-use and unassigned characters, and line or paragraph separators.
_DROPPED_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}
# Characters no common file system accepts in a name; a browser would mangle them anyway.
_RESERVED = re.compile(r'[<>:"|?*]')


def clean_filename(name: str | None) -> str:
    """A name safe to show and to offer on download: no folders, no invisible characters."""
    name = unicodedata.normalize("NFC", name or "")
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(
        " " if ch.isspace() else ch
        for ch in name
        if unicodedata.category(ch) not in _DROPPED_CATEGORIES or ch in "\t\n\r"
    )
    name = _RESERVED.sub("_", name)
    name = re.sub(r" {2,}", " ", name).strip(" .")
    if len(name) > MAX_NAME:
        stem, dot, extension = name.rpartition(".")
        if dot and 0 < len(extension) <= 16:
            name = stem[: MAX_NAME - len(extension) - 1].rstrip(" .") + "." + extension
        else:
            name = name[:MAX_NAME].rstrip(" .")
    return name or FALLBACK_NAME


def safe_content_type(claimed: str | None) -> str:
    base = (claimed or "").split(";", 1)[0].strip().lower()
    return base if base in SAFE_TYPES else OCTET_STREAM


def add_attachment(
    ticket: Ticket, user: User, file_storage: FileStorage | None, internal: bool = False
) -> TicketAttachment:
    """Store an uploaded file on the ticket, with the same rules as a reply: the
    requester and agents add files, only agents add internal ones, and a closed
    ticket takes files only from agents."""
    if not can_reply(user, ticket):
        raise Forbidden("Only the requester and agents add files to a ticket.")
    if internal and not can_work(user):
        raise Forbidden("Only agents and admins add internal files.")
    if ticket.status == "closed" and not can_work(user):
        raise Conflict("This ticket is closed; open a new one.")
    if file_storage is None or not (file_storage.filename or "").strip():
        raise ServiceError("Choose a file to attach.", field="file")

    limit = current_app.config["SETTINGS"].ATTACHMENT_MAX_BYTES
    stored = storage.save(file_storage.stream, prefix=STORAGE_PREFIX, max_bytes=limit)
    if stored.size == 0:
        storage.delete(stored.key)
        raise ServiceError("The file is empty.", field="file")
    try:
        attachment = TicketAttachment(
            ticket_id=ticket.id,
            uploaded_by_id=user.id,
            filename=clean_filename(file_storage.filename),
            storage_key=stored.key,
            content_type=safe_content_type(file_storage.mimetype),
            size=stored.size,
            sha256=stored.sha256,
            is_internal=internal,
        )
        db.session.add(attachment)
        db.session.flush()
        record(
            "ticket.attachment_added",
            user,
            ticket,
            attachment_id=attachment.id,
            filename=attachment.filename,
            size=attachment.size,
            sha256=attachment.sha256,
            internal=internal,
        )
        jobs.commit()
    except BaseException:
        # A file no committed row points at is an orphan nobody could ever delete.
        jobs.rollback()
        storage.delete(stored.key)
        raise
    return attachment


def attachments_for(ticket: Ticket, user: User) -> list[TicketAttachment]:
    """The ticket's files `user` may see, oldest first."""
    stmt = select(TicketAttachment).where(TicketAttachment.ticket_id == ticket.id)
    if not can_see_internal(user):
        stmt = stmt.where(TicketAttachment.is_internal.is_(False))
    return list(db.session.scalars(stmt.order_by(TicketAttachment.created_at, TicketAttachment.id)))


def get_attachment_or_404(ticket: Ticket, attachment_id: int, user: User) -> TicketAttachment:
    """One of the ticket's files; another ticket's file, or an internal one the user
    may not see, is 404 so that its existence is not given away."""
    if not can_see(user, ticket):
        abort(403)
    attachment = db.session.get(TicketAttachment, attachment_id)
    if attachment is None or attachment.ticket_id != ticket.id:
        abort(404)
    if attachment.is_internal and not can_see_internal(user):
        abort(404)
    return attachment
