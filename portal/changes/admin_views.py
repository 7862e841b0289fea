"""The change process's setup pages (admins): affected services, freeze periods and
pre-approved standard templates."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("change_admin", __name__, url_prefix="/changes/setup")
