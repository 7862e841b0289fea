"""The change calendar: scheduled and running changes and freeze periods by month and
week (routes on the changes blueprint)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from flask import current_app, render_template, request, url_for
from flask_login import current_user
from markupsafe import Markup
from werkzeug.routing import BuildError
from werkzeug.wrappers import Response

from .. import cache
from ..security import login_required
from ..web import render
from . import access, calendar
from .models import ChangeRequest
from .setup_models import FreezePeriod
from .views import bp


def _change_path(change_id: int) -> str:
    """The change page's address. The calendar may be served before the change page
    exists in a given build, so it falls back to the page's documented path."""
    try:
        return url_for("changes.detail", change_id=change_id)
    except BuildError:
        return f"{url_for('changes.calendar').rsplit('/', 1)[0]}/{change_id}"


@bp.app_template_global()
def change_page_url(change: ChangeRequest | calendar.CalendarChange) -> str:
    return _change_path(change.id)


def _calendar_urls() -> Callable[[str, date], str]:
    """The calendar's address for a view and a day. The path is built once per page: a
    month links dozens of days, and url_for costs more than the rest of such a link."""
    path = url_for("changes.calendar")
    return lambda view, day: f"{path}?view={view}&date={day.isoformat()}"


@bp.app_template_global()
def change_link_prefix() -> str:
    """What a change's id is appended to for its page ("/changes/"): built once per page
    for the same reason, by pages that link many changes (a month shows a few hundred)."""
    return _change_path(0).removesuffix("0")


# Signed in, not a permission: requesters hold CHANGES_CREATE but not CHANGES_READ and
# still see their own changes here, auditors the reverse; access.visible() narrows the
# rows for each role exactly as the list and the change page do.
@bp.route("/calendar", endpoint="calendar")
@login_required
def calendar_page() -> Response:
    zone = calendar.zone_of(current_user, current_app.config["SETTINGS"].TIMEZONE)
    today = calendar.today_in(zone)
    view = request.args.get("view", "month")
    if view not in calendar.VIEWS:
        view = "month"
    anchor = calendar.parse_date(request.args.get("date"), today)
    period = calendar.period_for(view, anchor)
    return render(
        "changes/calendar.html", "calendar", calendar_html=calendar_html(period, zone, today)
    )


def calendar_html(period: calendar.Period, zone: str, today: date) -> Markup:
    """The month or week as HTML. Everyone who sees every change and opens the same
    period on the same day gets the same page, so it is drawn once and shared until a
    change, a service or a freeze is written: drawing a busy month is most of the cost."""
    scope = "all" if access.sees_all(current_user) else f"user:{current_user.id}"
    key = f"calendar-html:{scope}:{period.view}:{period.anchor}:{zone}:{today}"

    def draw() -> str:
        return render_template(
            "changes/_calendar_view.html",
            cal=calendar.build(current_user, period, zone, today),
            period=period,
            calendar_url=_calendar_urls(),
            change_link_prefix=change_link_prefix(),
            cell_limit=calendar.MONTH_CELL_LIMIT,
        )

    tables = (*calendar.CHANGE_TABLES, FreezePeriod.__tablename__)
    return Markup(cache.shared(tables, key, draw))  # noqa: S704 (rendered by Jinja, escaped)
