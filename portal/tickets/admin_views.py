"""The help desk's setup pages (admins): teams, categories, routing rules and SLAs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, abort, flash, request, url_for
from flask_login import current_user
from sqlalchemy import select
from werkzeug.wrappers import Response

from ..errors import ServiceError
from ..extensions import db
from ..security import Permission, permission_required
from ..users.models import User
from ..web import error_response, redirect_to, render
from . import admin_services as admin
from .admin_forms import (
    CalendarForm,
    CategoryForm,
    HolidayForm,
    MemberForm,
    PolicyForm,
    RuleForm,
    TeamEditForm,
    TeamForm,
)
from .setup_models import PRIORITIES, Category, Holiday, RoutingRule, SlaCalendar, SlaPolicy, Team

bp = Blueprint("desk_admin", __name__, url_prefix="/tickets/setup")
MANAGE = Permission.SETTINGS_MANAGE


def _get(model: type, row_id: int) -> Any:
    row = db.session.get(model, row_id)
    if row is None:
        abort(404)
    return row


def _all(model: type, order: Any) -> list[Any]:
    return list(db.session.scalars(select(model).order_by(order)))


def _active_people() -> list[User]:
    return list(
        db.session.scalars(select(User).where(User.is_active.is_(True)).order_by(User.name))
    )


def _choices(rows: list[Any], blank: str | None = None) -> list[tuple[str, str]]:
    options = [(str(r.id), r.name) for r in rows]
    return [("", blank), *options] if blank is not None else options


def _done(endpoint: str, message: str, **values: Any) -> Response:
    flash(message, "success")
    return redirect_to(url_for(endpoint, **values))


def _attempt(form: Any, action: Callable[[], Any]) -> bool:
    """Run a service call, putting its refusal on the form; True when it went through."""
    try:
        action()
    except ServiceError as exc:
        form.add_error(exc.field, exc.message)
        return False
    return True


# -- teams ---------------------------------------------------------------------------------


@bp.route("/teams", methods=["GET", "POST"])
@permission_required(MANAGE)
def teams() -> Response:
    form = TeamForm()
    if request.method == "POST":
        if form.validate() and _attempt(
            form, lambda: admin.create_team(form.name.data, current_user)
        ):
            return _done("desk_admin.teams", f"Team {form.name.data.strip()} created.")
        return render("tickets/admin/teams.html", None, 422, form=form, teams=_all(Team, Team.name))
    return render("tickets/admin/teams.html", form=form, teams=_all(Team, Team.name))


def _team_forms(
    team: Team, edit: TeamEditForm | None = None, member: MemberForm | None = None
) -> dict[str, Any]:
    people = _active_people()
    edit = edit or TeamEditForm(
        name=team.name, lead=str(team.lead_id or ""), escalation_level=team.escalation_level or ""
    )
    edit.lead.choices = _choices(people, "—")
    member = member or MemberForm()
    member.user.choices = _choices([p for p in people if p not in team.members])
    return {"team": team, "form": edit, "member_form": member}


@bp.route("/teams/<int:team_id>", methods=["GET", "POST"])
@permission_required(MANAGE)
def team(team_id: int) -> Response:
    row: Team = _get(Team, team_id)
    if request.method == "POST":
        context = _team_forms(row, edit=TeamEditForm())
        form = context["form"]
        if form.validate():
            lead = db.session.get(User, int(form.lead.data)) if form.lead.data else None
            if _attempt(
                form,
                lambda: admin.update_team(
                    row, form.name.data, lead, form.escalation_level.data, current_user
                ),
            ):
                return _done("desk_admin.team", "Team saved.", team_id=row.id)
        return render("tickets/admin/team.html", None, 422, **context)
    return render("tickets/admin/team.html", **_team_forms(row))


@bp.route("/teams/<int:team_id>/members", methods=["POST"])
@permission_required(MANAGE)
def add_member(team_id: int) -> Response:
    row: Team = _get(Team, team_id)
    context = _team_forms(row, member=MemberForm())
    form = context["member_form"]
    if form.validate():
        person = _get(User, int(form.user.data))
        if _attempt(form, lambda: admin.add_member(row, person, current_user)):
            return _done("desk_admin.team", f"{person.name} joined {row.name}.", team_id=row.id)
    return render("tickets/admin/team.html", None, 422, **context)


@bp.route("/teams/<int:team_id>/members/<int:user_id>/remove", methods=["POST"])
@permission_required(MANAGE)
def remove_member(team_id: int, user_id: int) -> Response:
    row: Team = _get(Team, team_id)
    person: User = _get(User, user_id)
    try:
        admin.remove_member(row, person, current_user)
    except ServiceError as exc:
        return error_response(exc.status, "Not done", exc.message)
    return _done("desk_admin.team", f"{person.name} left {row.name}.", team_id=row.id)


# -- categories and routing rules ------------------------------------------------------------


def _category_form(form: CategoryForm | None = None) -> CategoryForm:
    form = form or CategoryForm()
    form.team.choices = _choices(_all(Team, Team.name), "—")
    return form


@bp.route("/categories", methods=["GET", "POST"])
@permission_required(MANAGE)
def categories() -> Response:
    form = _category_form()
    if request.method == "POST":
        if form.validate():
            team = db.session.get(Team, int(form.team.data)) if form.team.data else None
            if _attempt(
                form, lambda: admin.save_category(None, form.name.data, team, current_user)
            ):
                return _done("desk_admin.categories", "Category saved.")
        status = 422
    else:
        status = 200
    return render(
        "tickets/admin/categories.html",
        None,
        status,
        form=form,
        categories=_all(Category, Category.name),
    )


@bp.route("/categories/<int:category_id>", methods=["GET", "POST"])
@permission_required(MANAGE)
def category(category_id: int) -> Response:
    row: Category = _get(Category, category_id)
    if request.method == "POST":
        form = _category_form()
        if form.validate():
            team = db.session.get(Team, int(form.team.data)) if form.team.data else None
            if _attempt(form, lambda: admin.save_category(row, form.name.data, team, current_user)):
                return _done("desk_admin.categories", f"Category {row.name} saved.")
        return render("tickets/admin/category.html", None, 422, form=form, category=row)
    form = _category_form(CategoryForm(name=row.name, team=str(row.team_id or "")))
    return render("tickets/admin/category.html", form=form, category=row)


def _rule_form(form: RuleForm) -> RuleForm:
    form.team.choices = _choices(_all(Team, Team.name))
    form.category.choices = _choices(_all(Category, Category.name), "—")
    return form


def _rule_from_form(rule: RoutingRule | None, form: RuleForm) -> bool:
    team = db.session.get(Team, int(form.team.data))
    category = db.session.get(Category, int(form.category.data)) if form.category.data else None
    return _attempt(
        form,
        lambda: admin.save_rule(
            rule,
            name=form.name.data,
            match=form.match.data,
            is_regex=bool(form.is_regex.data),
            team=team,
            category=category,
            priority=form.priority.data or None,
            is_active=bool(form.is_active.data),
            actor=current_user,
        ),
    )


@bp.route("/routing", methods=["GET", "POST"])
@permission_required(MANAGE)
def routing() -> Response:
    form = _rule_form(RuleForm())
    status = 200
    if request.method == "POST":
        if form.validate() and _rule_from_form(None, form):
            return _done("desk_admin.routing", "Routing rule added.")
        status = 422
    rules = _all(RoutingRule, RoutingRule.position)
    return render("tickets/admin/routing.html", None, status, form=form, rules=rules)


@bp.route("/routing/<int:rule_id>", methods=["GET", "POST"])
@permission_required(MANAGE)
def rule(rule_id: int) -> Response:
    row: RoutingRule = _get(RoutingRule, rule_id)
    if request.method == "POST":
        form = _rule_form(RuleForm())
        if form.validate() and _rule_from_form(row, form):
            return _done("desk_admin.routing", "Routing rule saved.")
        return render("tickets/admin/rule.html", None, 422, form=form, rule=row)
    form = _rule_form(
        RuleForm(
            name=row.name,
            match=row.match,
            is_regex=row.is_regex,
            team=str(row.team_id),
            category=str(row.category_id or ""),
            priority=row.priority or "",
            is_active=row.is_active,
        )
    )
    return render("tickets/admin/rule.html", form=form, rule=row)


@bp.route("/routing/<int:rule_id>/move/<direction>", methods=["POST"])
@permission_required(MANAGE)
def move_rule(rule_id: int, direction: str) -> Response:
    row: RoutingRule = _get(RoutingRule, rule_id)
    try:
        admin.move_rule(row, direction, current_user)
    except ServiceError as exc:
        return error_response(exc.status, "Not done", exc.message)
    return _done("desk_admin.routing", "Order saved.")


# -- SLA -------------------------------------------------------------------------------------


def _sla_context(**forms: Any) -> dict[str, Any]:
    calendars = _all(SlaCalendar, SlaCalendar.id)
    policies = sorted(_all(SlaPolicy, SlaPolicy.id), key=lambda p: PRIORITIES.index(p.priority))
    policy_forms = {}
    for policy in policies:
        form = forms.get(f"policy_{policy.id}") or PolicyForm(
            prefix=f"p{policy.id}",
            response_minutes=policy.response_minutes,
            resolution_minutes=policy.resolution_minutes,
            calendar=str(policy.calendar_id),
        )
        form.calendar.choices = _choices(calendars)
        policy_forms[policy.id] = form
    calendar_forms = {
        c.id: forms.get(f"calendar_{c.id}")
        or CalendarForm(
            prefix=f"c{c.id}",
            name=c.name,
            kind=c.kind,
            timezone=c.timezone,
            weekdays=[d for d in c.weekdays.split(",") if d],
            day_start=c.day_start,
            day_end=c.day_end,
        )
        for c in calendars
    }
    holiday_forms = {
        c.id: forms.get(f"holiday_{c.id}") or HolidayForm(prefix=f"h{c.id}") for c in calendars
    }
    return {
        "policies": policies,
        "calendars": calendars,
        "policy_forms": policy_forms,
        "calendar_forms": calendar_forms,
        "holiday_forms": holiday_forms,
    }


@bp.route("/sla")
@permission_required(MANAGE)
def sla_settings() -> Response:
    return render("tickets/admin/sla.html", **_sla_context())


@bp.route("/sla/policies/<int:policy_id>", methods=["POST"])
@permission_required(MANAGE)
def update_policy(policy_id: int) -> Response:
    policy: SlaPolicy = _get(SlaPolicy, policy_id)
    form = PolicyForm(prefix=f"p{policy.id}")
    form.calendar.choices = _choices(_all(SlaCalendar, SlaCalendar.id))
    if form.validate():
        calendar = _get(SlaCalendar, int(form.calendar.data))
        if _attempt(
            form,
            lambda: admin.update_policy(
                policy,
                form.response_minutes.data,
                form.resolution_minutes.data,
                calendar,
                current_user,
            ),
        ):
            return _done(
                "desk_admin.sla_settings",
                f"The {policy.priority} policy is saved; open tickets are re-timed.",
            )
    return render(
        "tickets/admin/sla.html", None, 422, **_sla_context(**{f"policy_{policy.id}": form})
    )


@bp.route("/sla/calendars/<int:calendar_id>", methods=["POST"])
@permission_required(MANAGE)
def update_calendar(calendar_id: int) -> Response:
    calendar: SlaCalendar = _get(SlaCalendar, calendar_id)
    form = CalendarForm(prefix=f"c{calendar.id}")
    if form.validate() and _attempt(
        form,
        lambda: admin.update_calendar(
            calendar,
            name=form.name.data,
            kind=form.kind.data,
            timezone=form.timezone.data.strip(),
            weekdays=[int(d) for d in form.weekdays.data or []],
            day_start=form.day_start.data,
            day_end=form.day_end.data,
            actor=current_user,
        ),
    ):
        return _done("desk_admin.sla_settings", f"Calendar {calendar.name} saved.")
    return render(
        "tickets/admin/sla.html", None, 422, **_sla_context(**{f"calendar_{calendar.id}": form})
    )


@bp.route("/sla/calendars/<int:calendar_id>/holidays", methods=["POST"])
@permission_required(MANAGE)
def add_holiday(calendar_id: int) -> Response:
    calendar: SlaCalendar = _get(SlaCalendar, calendar_id)
    form = HolidayForm(prefix=f"h{calendar.id}")
    if form.validate() and _attempt(
        form, lambda: admin.add_holiday(calendar, form.day.data, form.name.data or "", current_user)
    ):
        return _done("desk_admin.sla_settings", "Holiday added.")
    return render(
        "tickets/admin/sla.html", None, 422, **_sla_context(**{f"holiday_{calendar.id}": form})
    )


@bp.route("/sla/holidays/<int:holiday_id>/remove", methods=["POST"])
@permission_required(MANAGE)
def remove_holiday(holiday_id: int) -> Response:
    holiday: Holiday = _get(Holiday, holiday_id)
    admin.remove_holiday(holiday, current_user)
    return _done("desk_admin.sla_settings", "Holiday removed.")
