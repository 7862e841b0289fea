"""An account's containment page (admins): what it did lately, its sign-in attempts,
and the form that marks it compromised (the page itself is the confirmation step)."""

from __future__ import annotations

from flask import flash, request, url_for
from flask_login import current_user
from werkzeug.wrappers import Response
from wtforms import TextAreaField
from wtforms.validators import DataRequired, Length

from ..errors import ServiceError
from ..forms import PortalForm
from ..security import Permission, permission_required
from ..web import redirect_to, render
from . import bp
from .compromise import REASON_MAX, mark_compromised, recent_events, sign_in_attempts
from .views import get_user_or_404


class CompromiseForm(PortalForm):
    reason = TextAreaField(
        "Why is the account thought compromised?",
        validators=[
            DataRequired("Say why the account is thought compromised."),
            Length(max=REASON_MAX, message=f"Use at most {REASON_MAX} characters."),
        ],
        render_kw={"rows": 2},
    )


@bp.route("/users/<int:user_id>/compromise", methods=["GET", "POST"])
@permission_required(Permission.USERS_MANAGE)
def compromise(user_id: int) -> Response:
    user = get_user_or_404(user_id)
    form = CompromiseForm()
    status = 200
    if request.method == "POST":
        status = 422
        if form.validate():
            try:
                ended = mark_compromised(current_user, user, form.reason.data)
            except ServiceError as exc:
                form.add_error(exc.field, exc.message)
                status = exc.status
            else:
                flash(
                    f"{user.name} is marked compromised: {ended} session(s) ended, the "
                    "password no longer works, and sign-in waits for a password reset.",
                    "success",
                )
                return redirect_to(url_for("users.compromise", user_id=user.id))
    return render(
        "users/compromise.html",
        None,
        status,
        user=user,
        form=form,
        events=recent_events(user),
        attempts=sign_in_attempts(user),
        is_self=user.id == current_user.id,
    )
