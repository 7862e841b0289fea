"""The home page's panels, each its own URL: the page loads them after itself and htmx
refreshes each every minute (routes on the reports blueprint)."""

from __future__ import annotations

from flask import abort
from flask_login import current_user
from werkzeug.wrappers import Response

from ..security import login_required
from ..timeutil import utcnow
from ..web import render
from .dashboard import PANELS, panels_for
from .views import bp


@bp.app_template_global()
def dashboard_panels() -> list:  # type: ignore[type-arg]
    return panels_for(current_user)


@bp.route("/panels/<name>")
@login_required
def panel(name: str) -> Response:
    found = PANELS.get(name)
    if found is None:
        abort(404)
    if not found.shows_to(current_user):
        abort(403)
    data = found.compute(current_user)
    return render("reports/panel.html", "panel", panel=found, data=data, updated=utcnow())
