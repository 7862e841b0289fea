"""The verification page: start a run of the whole chain, watch it, read what it found.
Auditors and admins (audits:read). Its routes join the audit log's blueprint."""

from __future__ import annotations

from flask import flash, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from ..security import Permission, permission_required
from ..web import redirect_to, render
from . import runs
from .views import bp


@bp.route("/verify")
@permission_required(Permission.AUDITS_READ)
def verify_page() -> Response:
    return render("audits/verify.html", runs=runs.recent_runs(), active=runs.active_run())


@bp.route("/verify", methods=["POST"])
@permission_required(Permission.AUDITS_READ)
def start_verification() -> Response:
    """Start a run, unless one is on its way already (then show that one)."""
    active = runs.active_run()
    if active is not None:
        flash("A verification is already under way: showing it.", "info")
        return redirect_to(url_for("audits.verification_run", run_id=active.id))
    run = runs.request_run(current_user)
    return redirect_to(url_for("audits.verification_run", run_id=run.id))


@bp.route("/verify/<int:run_id>")
@permission_required(Permission.AUDITS_READ)
def verification_run(run_id: int) -> Response:
    """One run: the page, or (htmx polling each second) its status fragment."""
    return render("audits/verify_run.html", "status", run=runs.get_run_or_404(run_id))
