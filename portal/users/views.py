"""Admin pages: the users list, a user's page, invitations and sessions."""

from __future__ import annotations

from collections.abc import Callable

from flask import abort, flash, redirect, request, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from ..audits.services import events_for
from ..errors import ServiceError
from ..extensions import db
from ..security import Permission, permission_required
from ..web import error_response, redirect_to, render
from . import auth, bp, services
from .forms import ConfirmForm, InviteForm, RoleForm
from .models import Invitation, User, UserSession
from .queries import STATUSES, UserFilters, list_users
from .session_cookie import current_session

MANAGE = Permission.USERS_MANAGE


def get_user_or_404(user_id: int) -> User:
    user = db.session.get(User, user_id)
    if user is None:
        abort(404)
    return user


def get_invitation_or_404(invitation_id: int) -> Invitation:
    invitation = db.session.get(Invitation, invitation_id)
    if invitation is None:
        abort(404)
    return invitation


def _refused(exc: ServiceError) -> Response:
    return error_response(exc.status, "Not done", exc.message)


@bp.route("/users/")
@permission_required(MANAGE)
def user_list() -> Response:
    filters = UserFilters.from_args(request.args)
    page = list_users(filters)
    counts = auth.open_session_counts([u.id for u in page.items])
    return render(
        "users/list.html",
        "results",
        page=page,
        filters=filters,
        statuses=STATUSES,
        session_counts=counts,
    )


@bp.route("/users/<int:user_id>")
@permission_required(MANAGE)
def user_detail(user_id: int) -> Response:
    user = get_user_or_404(user_id)
    return render(
        "users/detail.html",
        user=user,
        role_form=RoleForm(role=user.role),
        form=ConfirmForm(),
        sessions=auth.open_sessions(user),
        events=events_for("user", user.id, limit=20),
    )


@bp.route("/users/<int:user_id>/role", methods=["POST"])
@permission_required(MANAGE)
def change_role(user_id: int) -> Response:
    user = get_user_or_404(user_id)
    form = RoleForm()
    if not form.validate():
        return render("users/detail.html", "role_form", 422, user=user, role_form=form)
    try:
        services.change_role(user, form.role.data, current_user)
    except ServiceError as exc:
        return _refused(exc)
    flash(f"{user.name} is now {user.role_enum.label}.", "success")
    return redirect(url_for("users.user_detail", user_id=user.id))


def _user_action(action: Callable[[User, User], object], done: str) -> Callable[[int], Response]:
    def view(user_id: int) -> Response:
        user = get_user_or_404(user_id)
        try:
            action(user, current_user)
        except ServiceError as exc:
            return _refused(exc)
        flash(done.format(name=user.name), "success")
        return redirect(url_for("users.user_detail", user_id=user.id))

    return view


for _rule, _name, _action, _done in (
    (
        "deactivate",
        "deactivate_user",
        services.deactivate,
        "{name} is deactivated; their sessions have ended.",
    ),
    ("reactivate", "reactivate_user", services.reactivate, "{name} is active again."),
    ("unlock", "unlock_user", services.unlock, "{name} is unlocked."),
):
    bp.add_url_rule(
        f"/users/<int:user_id>/{_rule}",
        _name,
        permission_required(MANAGE)(_user_action(_action, _done)),
        methods=["POST"],
    )


@bp.route("/users/<int:user_id>/reset-password", methods=["POST"])
@permission_required(MANAGE)
def reset_user_password(user_id: int) -> Response:
    user = get_user_or_404(user_id)
    try:
        temporary = services.admin_reset_password(user, current_user)
    except ServiceError as exc:
        return _refused(exc)
    # Shown in this response only: never flashed (the session cookie is readable).
    return render("users/temporary_password.html", user=user, temporary=temporary)


@bp.route("/users/<int:user_id>/sessions/<int:session_id>/end", methods=["POST"])
@permission_required(MANAGE)
def end_user_session(user_id: int, session_id: int) -> Response:
    user = get_user_or_404(user_id)
    row = db.session.get(UserSession, session_id)
    if row is None or row.user_id != user.id:
        abort(404)
    auth.end_session(row, current_user, "ended by admin")
    flash("The session was ended.", "success")
    return redirect(url_for("users.user_detail", user_id=user.id))


@bp.route("/users/<int:user_id>/sessions/end-all", methods=["POST"])
@permission_required(MANAGE)
def end_all_user_sessions(user_id: int) -> Response:
    user = get_user_or_404(user_id)
    own = current_session()
    keep = own.id if own and user.id == current_user.id else None
    count = auth.end_user_sessions(user, current_user, "ended by admin", keep_session_id=keep)
    flash(f"{count} session(s) of {user.name} ended.", "success")
    return redirect(url_for("users.user_detail", user_id=user.id))


@bp.route("/users/sessions/end-everyone-else", methods=["POST"])
@permission_required(MANAGE)
def end_everyone_else() -> Response:
    own = current_session()
    count = auth.end_everyone_else(current_user, own.id if own else -1)
    flash(f"{count} session(s) ended; yours stays open.", "success")
    return redirect(url_for("users.user_list"))


@bp.route("/users/invitations", methods=["GET", "POST"])
@permission_required(MANAGE)
def invitations() -> Response:
    form = InviteForm()
    status = 200
    if request.method == "POST":
        if form.validate():
            try:
                invitation = services.invite(form.email.data, form.role.data, current_user)
            except ServiceError as exc:
                form.add_error(exc.field, exc.message)
            else:
                flash(f"Invitation sent to {invitation.email}.", "success")
                return redirect_to(url_for("users.invitations"))
        status = 422
    return render(
        "users/invitations.html",
        "invite_form" if status == 422 else None,
        status,
        form=form,
        invitations=services.pending_invitations(),
        confirm=ConfirmForm(),
    )


def _invitation_action(
    action: Callable[[Invitation, User], None], done: str
) -> Callable[[int], Response]:
    def view(invitation_id: int) -> Response:
        invitation = get_invitation_or_404(invitation_id)
        try:
            action(invitation, current_user)
        except ServiceError as exc:
            return _refused(exc)
        flash(done.format(email=invitation.email), "success")
        return redirect(url_for("users.invitations"))

    return view


for _rule, _name, _action, _done in (
    (
        "revoke",
        "revoke_invitation",
        services.revoke_invitation,
        "The invitation to {email} is revoked.",
    ),
    (
        "resend",
        "resend_invitation",
        services.resend_invitation,
        "A new invitation was sent to {email}; the old link no longer works.",
    ),
):
    bp.add_url_rule(
        f"/users/invitations/<int:invitation_id>/{_rule}",
        _name,
        permission_required(MANAGE)(_invitation_action(_action, _done)),
        methods=["POST"],
    )
