"""Accounts, invitations, sessions, lockout."""

from flask import Blueprint

bp = Blueprint("users", __name__)

from . import account_views, views  # noqa: E402,F401  (their routes register on bp)
