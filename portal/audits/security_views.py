"""The security page (admins and auditors), acknowledging its alerts (admins), and the
banner admins see on every page while an alert of the last week waits."""

from __future__ import annotations

import logging
from typing import Any

from flask import flash, url_for
from flask_login import current_user
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.wrappers import Response

from .. import cache
from ..extensions import db
from ..security import Permission, can, permission_required
from ..timeutil import to_zone
from ..web import redirect_to, render
from . import alerts
from .security_page import security_figures
from .views import _viewer_zone, bp

log = logging.getLogger(__name__)

# Acknowledging is an admin's call: USERS_MANAGE is the permission only admins hold.
ACKNOWLEDGE = Permission.USERS_MANAGE


@bp.route("/security")
@permission_required(Permission.AUDITS_READ)
def security() -> Response:
    figures = security_figures()
    since_day = to_zone(figures.since, _viewer_zone()).date()  # type: ignore[union-attr]
    return render(
        "audits/security.html",
        figures=figures,
        # The audit log's own filters for the same stretch of time (`from` is a day).
        window_args={"from": since_day.isoformat()},
        kind_labels=alerts.KIND_LABELS,
        may_acknowledge=can(ACKNOWLEDGE),
    )


@bp.route("/security/alerts/<int:alert_id>/acknowledge", methods=["POST"])
@permission_required(ACKNOWLEDGE)
def acknowledge_alert(alert_id: int) -> Response:
    alert = alerts.get_alert_or_404(alert_id)
    if alerts.acknowledge(alert, current_user):
        flash(f"Acknowledged: {alert.subject}", "success")
    else:
        flash("That alert was already acknowledged.", "info")
    return redirect_to(url_for("audits.security"))


@bp.app_template_global()
def security_alert_banner() -> dict[str, Any]:
    """The banner's figures, for admins only: nobody else pays for the query. Shared by
    every admin and kept until the alerts table changes (or SHARED_CACHE_SECONDS)."""
    if not can(ACKNOWLEDGE):
        return {}
    try:
        return cache.shared("security_alerts", "banner", alerts.unacknowledged_summary)
    except SQLAlchemyError:
        # Every page shows the banner, error pages included: it must not take them down.
        log.exception("the security alert banner could not be loaded")
        db.session.rollback()
        return {}
