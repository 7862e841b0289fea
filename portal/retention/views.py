"""The retention page under /audits/retention: each kind's policy and what would go now
(auditors and admins read it), and editing a policy (admins, users:manage). The routes
join the audit log's blueprint."""

from __future__ import annotations

from typing import Any

from flask import flash, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from ..audits.views import bp
from ..errors import ServiceError
from ..security import Permission, permission_required
from ..web import redirect_to, render
from . import policies
from .forms import PolicyForm
from .kinds import BY_KEY, KINDS
from .panel import panel


def _page(status: int = 200, form: PolicyForm | None = None, **extra: Any) -> Response:
    return render(
        "audits/retention.html",
        None,
        status,
        due=policies.due_now(),
        export_days=policies.export_retention_days(),
        failed=form,
        panel=panel(),
        labels={kind.key: kind.label for kind in KINDS},
        **extra,
    )


@bp.route("/retention")
@permission_required(Permission.AUDITS_READ)
def retention() -> Response:
    return _page()


@bp.route("/retention", methods=["POST"])
@permission_required(Permission.USERS_MANAGE)
def update_retention_policy() -> Response:
    form = PolicyForm()
    if form.validate():
        try:
            policy = policies.set_days(form.kind.data, form.days.data, current_user)
        except ServiceError as exc:
            form.add_error(exc.field, exc.message)
        else:
            label = BY_KEY[policy.kind].label
            flash(f"{label} are now kept {policy.days:,} days.", "success")
            return redirect_to(url_for("audits.retention"))
    return _page(422, form)
