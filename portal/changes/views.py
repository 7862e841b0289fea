"""Change request pages: the list, filing and editing, the change page and its steps,
and the approver's inbox."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("changes", __name__, url_prefix="/changes")
