"""Signing in and out, invitation links, password changes and resets, own sessions."""

from __future__ import annotations

from flask import abort, current_app, flash, redirect, request, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from ..client import client_ip, client_user_agent
from ..errors import LinkInvalid, ServiceError
from ..extensions import db, limiter
from ..security import login_required, public
from ..web import error_response, redirect_to, render
from . import auth, bp, services
from .forms import (
    AcceptInvitationForm,
    ChangePasswordForm,
    ConfirmForm,
    ForgotPasswordForm,
    LoginForm,
    ResetPasswordForm,
)
from .models import UserSession
from .session_cookie import current_session, sign_in, sign_out


def _client() -> tuple[str | None, str | None]:
    return client_ip(), client_user_agent()


def _safe_next(target: str | None) -> str:
    r"""Only local paths: an open redirect would make our sign-in page a phishing aid.

    No control characters either: browsers drop tabs and newlines from a URL (so
    "/\t/evil.example" is "//evil.example"), and a newline in a header is a 500.
    """
    if (
        target
        and target.startswith("/")
        and not target.startswith("//")
        and "\\" not in target
        and not any(ord(c) < 0x20 or ord(c) == 0x7F for c in target)
    ):
        return target
    return url_for("ops.home")


def _login_limit() -> str:
    return current_app.config["SETTINGS"].LOGIN_RATE_LIMIT


def _link_error(exc: LinkInvalid) -> Response:
    return error_response(410, "Link no longer valid", exc.message)


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"])
@public
def login() -> Response:
    if current_user.is_authenticated:
        return redirect(_safe_next(request.args.get("next")))
    form = LoginForm()
    if request.method == "POST":
        if not form.validate():
            return render("users/login.html", "form", 422, form=form)
        result = auth.authenticate(form.email.data, form.password.data, *_client())
        if result.user is None:
            form.add_error(None, result.error or auth.LOGIN_FAILED_MESSAGE)
            return render("users/login.html", "form", 422, form=form)
        sign_in(result.user, result.token or "")
        return redirect_to(_safe_next(request.args.get("next")))
    return render("users/login.html", "form", form=form)


@bp.route("/logout", methods=["POST"])
@public
def logout() -> Response:
    if current_user.is_authenticated and (row := current_session()) is not None:
        auth.end_session(row, current_user, "signed out")
    sign_out()
    flash("You are signed out.", "info")
    return redirect(url_for("users.login"))


@bp.route("/invite/<token>", methods=["GET", "POST"])
@public
def accept_invitation(token: str) -> Response:
    try:
        invitation = services.invitation_from_token(token)
    except LinkInvalid as exc:
        return _link_error(exc)
    form = AcceptInvitationForm()
    if request.method == "POST":
        if form.validate():
            try:
                user, session_token = services.accept_invitation(
                    invitation, form.name.data, form.password.data, *_client()
                )
            except LinkInvalid as exc:
                return _link_error(exc)
            except ServiceError as exc:
                form.add_error(exc.field, exc.message)
            else:
                sign_in(user, session_token)
                flash(f"Welcome, {user.name}. Your account is ready.", "success")
                return redirect(url_for("ops.home"))
        return render("users/accept_invitation.html", "form", 422, form=form, invitation=invitation)
    return render("users/accept_invitation.html", "form", form=form, invitation=invitation)


@bp.route("/account/password", methods=["GET", "POST"])
@login_required
def change_password() -> Response:
    form = ChangePasswordForm()
    if request.method == "POST":
        if form.validate():
            row = current_session()
            try:
                services.change_password(
                    current_user,
                    form.current_password.data,
                    form.password.data,
                    row.id if row else None,
                )
            except ServiceError as exc:
                form.add_error(exc.field, exc.message)
            else:
                flash("Your password was changed. Your other sessions were signed out.", "success")
                return redirect(url_for("ops.home"))
        return render("users/change_password.html", "form", 422, form=form)
    return render("users/change_password.html", "form", form=form)


def _self_service_on() -> None:
    if not current_app.config["SETTINGS"].SELF_SERVICE_RESET:
        abort(404)


@bp.route("/password/forgot", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"])
@public
def forgot_password() -> Response:
    _self_service_on()
    form = ForgotPasswordForm()
    if request.method == "POST":
        if not form.validate():
            return render("users/forgot_password.html", "form", 422, form=form)
        services.request_password_reset(form.email.data)
        return render("users/forgot_password.html", "form", form=form, sent=True)
    return render("users/forgot_password.html", "form", form=form)


@bp.route("/password/reset/<token>", methods=["GET", "POST"])
@public
def reset_password(token: str) -> Response:
    _self_service_on()
    try:
        reset = services.reset_from_token(token)
    except LinkInvalid as exc:
        return _link_error(exc)
    form = ResetPasswordForm()
    if request.method == "POST":
        if form.validate():
            try:
                session_token = services.complete_password_reset(
                    reset, form.password.data, *_client()
                )
            except ServiceError as exc:
                form.add_error(exc.field, exc.message)
            else:
                sign_in(reset.user, session_token)
                flash("Your password was reset. Other sessions were signed out.", "success")
                return redirect(url_for("ops.home"))
        return render("users/reset_password.html", "form", 422, form=form)
    return render("users/reset_password.html", "form", form=form)


@bp.route("/account/sessions")
@login_required
def my_sessions() -> Response:
    return render(
        "users/my_sessions.html",
        "sessions",
        sessions=auth.open_sessions(current_user),
        current=current_session(),
        form=ConfirmForm(),
    )


@bp.route("/account/sessions/<int:session_id>/end", methods=["POST"])
@login_required
def end_my_session(session_id: int) -> Response:
    row = db.session.get(UserSession, session_id)
    if row is None or row.user_id != current_user.id:
        abort(404)
    auth.end_session(row, current_user, "ended by user")
    if current_session() and row.id == current_session().id:
        sign_out()
        return redirect(url_for("users.login"))
    flash("The session was ended.", "success")
    return redirect(url_for("users.my_sessions"))


@bp.route("/account/sessions/end-others", methods=["POST"])
@login_required
def end_my_other_sessions() -> Response:
    row = current_session()
    count = auth.end_user_sessions(
        current_user, current_user, "ended by user", keep_session_id=row.id if row else None
    )
    flash(f"{count} other session(s) ended.", "success")
    return redirect(url_for("users.my_sessions"))
