"""The one way a stored file leaves the portal: always as an attachment, never sniffed,
never cached by a shared cache, and never able to run anything if a browser were talked
into rendering it inline. Attachments, change PDFs and exports all go through here."""

from __future__ import annotations

import unicodedata
from urllib.parse import quote

from flask import send_file
from werkzeug.wrappers import Response

from . import storage

# A stored file is never a page of the portal: no script, no style, no frame, no
# plugin may run from it.
DOWNLOAD_CSP = "default-src 'none'; sandbox"


def content_disposition(filename: str) -> dict[str, str]:
    """Both forms of the name: `filename*` for browsers (any script), and a plain
    ASCII `filename` for the few clients that read only that."""
    plain = unicodedata.normalize("NFKD", filename).encode("ascii", "ignore").decode("ascii")
    plain = "".join(ch if ch.isalnum() or ch in " .-_()+" else "_" for ch in plain).strip()
    return {
        "filename": plain or "attachment",
        "filename*": "UTF-8''" + quote(filename, safe="!#$&+-.^_`|~"),
    }


def stored_file_response(key: str, filename: str, mimetype: str) -> Response:
    """Stream the stored file `key` as a download named `filename`; FileNotFoundError
    when the file is gone (the caller says so in its own words)."""
    length = storage.size(key)
    stream = storage.open(key)
    response = send_file(
        stream,
        mimetype=mimetype,
        as_attachment=True,
        download_name=filename,
        etag=False,
        conditional=False,
    )
    response.content_length = length
    response.headers.set("Content-Disposition", "attachment", **content_disposition(filename))
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["Content-Security-Policy"] = DOWNLOAD_CSP
    return response
