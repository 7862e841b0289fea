"""The report pages (service desk, incidents, changes): each page (and the results
fragment its filter form asks for) and the CSV of one figure's table. Both read the
same figure functions, so a downloaded table always holds the numbers the page shows."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import current_app, make_response, request
from flask_login import current_user
from sqlalchemy import select
from werkzeug.wrappers import Response

from ..changes.models import TYPES as CHANGE_TYPES
from ..downloads import content_disposition
from ..extensions import db
from ..security import Permission, permission_required
from ..tickets.models import SEVERITY, TYPES
from ..tickets.setup_models import PRIORITIES, Team
from ..timeutil import utcnow
from ..web import error_response, render
from .change_figures import change_figures
from .charts import inline_charts
from .desk_figures import desk_figures
from .figure_csv import figure_csv
from .figures import Figure
from .incident_figures import incident_figures
from .period import PERIODS, ReportPeriod
from .views import bp

BOM = "\ufeff"


def _zone() -> str:
    """The viewer's zone, or the portal's when theirs is not one Python knows."""
    zone = getattr(current_user, "timezone", None) or current_app.config["SETTINGS"].TIMEZONE
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        return "UTC"
    return zone


def _teams() -> dict[int, str]:
    return dict(db.session.execute(select(Team.id, Team.name).order_by(Team.name)).all())


def _report() -> tuple[ReportPeriod, list[Figure], dict[int, str]]:
    teams = _teams()
    period = ReportPeriod.from_args(request.args, _zone(), teams)
    return period, desk_figures(period, utcnow()), teams


def _choices(teams: dict[int, str]) -> dict[str, list[tuple[Any, str]]]:
    return {
        "period": list(PERIODS.items()),
        "team": [("", "Any"), *teams.items()],
        "priority": [("", "Any"), *((p, p.capitalize()) for p in PRIORITIES)],
        "type": [("", "Any"), *((t, t.capitalize()) for t in TYPES)],
    }


@bp.route("/service-desk")
@permission_required(Permission.REPORTS_RUN)
def service_desk() -> Response:
    period, figures, teams = _report()
    return _page("reports/service_desk.html", period, figures, _choices(teams))


@bp.route("/service-desk.csv")
@permission_required(Permission.REPORTS_RUN)
def service_desk_csv() -> Response:
    period, figures, _ = _report()
    return _figure_download("service-desk", period, figures)


def _figure_download(report: str, period: ReportPeriod, figures: list[Figure]) -> Response:
    """The CSV of the figure the query string names, for the period it names."""
    if period.messages:
        # A file for another period than the one asked for would mislead in silence.
        return error_response(422, "Not exported", " ".join(period.messages))
    by_key = {figure.key: figure for figure in figures}
    figure = by_key.get(request.args.get("figure", ""))
    if figure is None:
        return error_response(404, "No such figure", "Choose one of the report's figures.")
    response = make_response(BOM + figure_csv(figure))
    response.mimetype = "text/csv"
    response.charset = "utf-8"
    name = f"{report}-{figure.key}-{period.start.isoformat()}-{period.end.isoformat()}.csv"
    response.headers.set("Content-Disposition", "attachment", **content_disposition(name))
    return response


def _page(template: str, period: ReportPeriod, figures: list[Figure], choices: Any) -> Response:
    # Input that was not understood is a form error (DESIGN §2): the page, its message
    # and the default figures, with 422.
    return render(
        template,
        "results",
        422 if period.messages else 200,
        period=period,
        figures=figures,
        charts=inline_charts(figures),
        choices=choices,
    )


def _incident_report() -> tuple[ReportPeriod, list[Figure], dict[int, str]]:
    teams, zone = _teams(), _zone()
    period = ReportPeriod.from_args(request.args, zone, teams, filters=("team", "priority"))
    # Overdue means due before the viewer's today, not the server's.
    today = datetime.now(ZoneInfo(zone)).date()
    return period, incident_figures(period, today), teams


@bp.route("/incidents")
@permission_required(Permission.REPORTS_RUN)
def incidents() -> Response:
    period, figures, teams = _incident_report()
    choices = _choices(teams)
    choices["priority"] = [("", "Any"), *((p, f"{SEVERITY[p]} ({p})") for p in PRIORITIES)]
    return _page("reports/incidents.html", period, figures, choices)


@bp.route("/incidents.csv")
@permission_required(Permission.REPORTS_RUN)
def incidents_csv() -> Response:
    period, figures, _ = _incident_report()
    return _figure_download("incidents", period, figures)


def _change_report() -> tuple[ReportPeriod, list[Figure]]:
    period = ReportPeriod.from_args(
        request.args, _zone(), {}, filters=("type",), types=CHANGE_TYPES
    )
    return period, change_figures(period)


@bp.route("/changes")
@permission_required(Permission.REPORTS_RUN)
def changes() -> Response:
    period, figures = _change_report()
    choices = {
        "period": list(PERIODS.items()),
        "type": [("", "Any"), *((t, t.capitalize()) for t in CHANGE_TYPES)],
    }
    return _page("reports/changes.html", period, figures, choices)


@bp.route("/changes.csv")
@permission_required(Permission.REPORTS_RUN)
def changes_csv() -> Response:
    return _figure_download("changes", *_change_report())
