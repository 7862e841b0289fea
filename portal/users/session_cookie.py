"""Ties Flask-Login to session rows: the signed cookie carries only the session token.

Every request re-reads the row, so a revoked session, a deactivated user or a
changed password ends access on the very next request.
"""

from __future__ import annotations

from flask import Flask, abort, g, redirect, request, session, url_for
from flask_login import login_user, logout_user
from werkzeug.wrappers import Response

from ..extensions import login_manager
from .auth import session_from_token
from .models import User, UserSession

SESSION_KEY = "sid"


def init_login(app: Flask) -> None:
    login_manager.session_protection = None  # the session row is the protection
    login_manager.user_loader(_load_user)
    login_manager.unauthorized_handler(_unauthorized)


def _load_user(user_id: str) -> User | None:
    row = session_from_token(session.get(SESSION_KEY))
    if row is None or str(row.user_id) != user_id:
        session.pop(SESSION_KEY, None)
        return None
    g.user_session = row
    return row.user


def _unauthorized() -> Response:
    if request.path.startswith("/api/"):
        abort(401)
    target = url_for("users.login", next=request.full_path if request.method == "GET" else None)
    if request.headers.get("HX-Request") == "true":
        response = Response(status=401)
        response.headers["HX-Redirect"] = target
        return response
    return redirect(target)


def sign_in(user: User, token: str) -> None:
    session.clear()
    session[SESSION_KEY] = token
    session.permanent = True
    login_user(user)


def sign_out() -> None:
    logout_user()
    session.clear()


def current_session() -> UserSession | None:
    """The session row of this request (loading the user first, if not done yet)."""
    from flask_login import current_user

    if not current_user.is_authenticated:
        return None
    return g.get("user_session")
