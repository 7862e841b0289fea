"""Running the help desk's setup: teams, categories, routing rules, SLA policies and
calendars. Every change is audited; a change to what the clocks count re-times the
open tickets it touches (by a job, as there may be many)."""

from __future__ import annotations

import re
from datetime import date, time
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from .. import jobs
from ..audits import diff, record
from ..errors import Conflict, ServiceError
from ..extensions import db
from ..timeutil import utcnow
from ..users.models import User
from . import sla
from .models import OPEN_STATUSES, Ticket
from .setup_models import (
    LEVELS,
    PRIORITIES,
    Category,
    Holiday,
    RoutingRule,
    SlaCalendar,
    SlaPolicy,
    Team,
)


def _name_free(model: type, name: str, current_id: int | None = None) -> str:
    name = name.strip()
    if not name:
        raise ServiceError("Give it a name.", field="name")
    clash = db.session.scalar(select(model).where(func.lower(model.name) == name.lower()))
    if clash is not None and clash.id != current_id:
        raise Conflict(f"“{name}” exists already.", field="name")
    return name


# -- teams ---------------------------------------------------------------------------------


def create_team(name: str, actor: User) -> Team:
    team = Team(name=_name_free(Team, name))
    db.session.add(team)
    db.session.flush()
    record("team.created", actor, team, after={"name": team.name})
    jobs.commit()
    return team


def update_team(team: Team, name: str, lead: User | None, level: str | None, actor: User) -> None:
    if level and level not in LEVELS:
        raise ServiceError("Choose a support level.", field="escalation_level")
    if level:
        holder = db.session.scalar(select(Team).where(Team.escalation_level == level))
        if holder is not None and holder.id != team.id:
            raise Conflict(
                f"{holder.name} takes {level} escalations already.", field="escalation_level"
            )
    before = {
        "name": team.name,
        "lead": team.lead.email if team.lead else None,
        "escalation_level": team.escalation_level,
    }
    team.name = _name_free(Team, name, team.id)
    team.lead_id = lead.id if lead else None
    team.escalation_level = level or None
    after = {
        "name": team.name,
        "lead": lead.email if lead else None,
        "escalation_level": team.escalation_level,
    }
    if before != after:
        record("team.updated", actor, team, **diff(before, after))
    jobs.commit()


def add_member(team: Team, user: User, actor: User) -> None:
    if not user.is_active:
        raise ServiceError("Only active people join teams.", field="user")
    if user in team.members:
        raise Conflict(f"{user.name} is in {team.name} already.", field="user")
    team.members.append(user)
    record("team.member_added", actor, team, member=user.email)
    jobs.commit()


def remove_member(team: Team, user: User, actor: User) -> None:
    if user not in team.members:
        raise Conflict(f"{user.name} is not in {team.name}.")
    team.members.remove(user)
    record("team.member_removed", actor, team, member=user.email)
    jobs.commit()


# -- categories and routing ------------------------------------------------------------------


def save_category(category: Category | None, name: str, team: Team | None, actor: User) -> Category:
    if category is None:
        category = Category(name=_name_free(Category, name), team_id=team.id if team else None)
        db.session.add(category)
        db.session.flush()
        record(
            "category.created",
            actor,
            category,
            after={"name": category.name, "team": team.name if team else None},
        )
        jobs.commit()
        return category
    before = {"name": category.name, "team": category.team.name if category.team else None}
    category.name = _name_free(Category, name, category.id)
    category.team = team
    after = {"name": category.name, "team": team.name if team else None}
    if before != after:
        record("category.updated", actor, category, **diff(before, after))
    jobs.commit()
    return category


def _check_match(match: str, is_regex: bool) -> str:
    match = match.strip()
    if not match:
        raise ServiceError("Give the words or the pattern to look for.", field="match")
    if is_regex:
        try:
            re.compile(match)
        except re.error as exc:
            raise ServiceError(f"The pattern is not valid: {exc}.", field="match") from None
    return match


def save_rule(
    rule: RoutingRule | None,
    *,
    name: str,
    match: str,
    is_regex: bool,
    team: Team,
    category: Category | None,
    priority: str | None,
    is_active: bool,
    actor: User,
) -> RoutingRule:
    if priority and priority not in PRIORITIES:
        raise ServiceError("Choose a priority.", field="priority")
    values = {
        "name": name.strip() or "Rule",
        "match": _check_match(match, is_regex),
        "is_regex": is_regex,
        "team_id": team.id,
        "category_id": category.id if category else None,
        "priority": priority or None,
        "is_active": is_active,
    }
    if rule is None:
        last = db.session.scalar(select(func.max(RoutingRule.position))) or 0
        rule = RoutingRule(position=last + 10, **values)
        db.session.add(rule)
        db.session.flush()
        record("routing_rule.created", actor, rule, after=values)
    else:
        before = {k: getattr(rule, k) for k in values}
        for key, value in values.items():
            setattr(rule, key, value)
        record("routing_rule.updated", actor, rule, **diff(before, values))
    jobs.commit()
    return rule


def move_rule(rule: RoutingRule, direction: str, actor: User) -> None:
    """Swap the rule with its neighbour above or below (the first match wins)."""
    rules = list(
        db.session.scalars(select(RoutingRule).order_by(RoutingRule.position, RoutingRule.id))
    )
    index = rules.index(rule)
    other = index - 1 if direction == "up" else index + 1
    if direction not in ("up", "down") or not 0 <= other < len(rules):
        raise Conflict("The rule cannot move further that way.")
    for position, item in enumerate(rules):
        item.position = (position + 1) * 10
    rule.position, rules[other].position = rules[other].position, rule.position
    record("routing_rule.moved", actor, rule, direction=direction)
    jobs.commit()


# -- SLA -------------------------------------------------------------------------------------


def update_policy(
    policy: SlaPolicy,
    response_minutes: int,
    resolution_minutes: int,
    calendar: SlaCalendar,
    actor: User,
) -> None:
    """New targets apply to open tickets of that priority from now on (a target event each)."""
    if not 0 < response_minutes <= resolution_minutes <= 365 * 24 * 60:
        raise ServiceError(
            "Targets are positive and the response comes before the resolution.",
            field="response_minutes",
        )
    before = {
        "response_minutes": policy.response_minutes,
        "resolution_minutes": policy.resolution_minutes,
        "calendar": policy.calendar.name,
    }
    policy.response_minutes, policy.resolution_minutes = response_minutes, resolution_minutes
    policy.calendar_id = calendar.id
    after = {
        "response_minutes": response_minutes,
        "resolution_minutes": resolution_minutes,
        "calendar": calendar.name,
    }
    if before == after:
        return
    record("sla_policy.updated", actor, policy, priority=policy.priority, **diff(before, after))
    jobs.after_commit(apply_policy_change, policy.priority)
    jobs.commit()


def update_calendar(
    calendar: SlaCalendar,
    *,
    name: str,
    kind: str,
    timezone: str,
    weekdays: list[int],
    day_start: time,
    day_end: time,
    actor: User,
) -> None:
    if kind not in ("24x7", "business"):
        raise ServiceError("Choose 24×7 or business hours.", field="kind")
    try:
        ZoneInfo(timezone)
    except Exception:
        raise ServiceError("Choose a time zone from the list.", field="timezone") from None
    if kind == "business" and not weekdays:
        raise ServiceError("Pick at least one working day.", field="weekdays")
    before = {
        "name": calendar.name,
        "kind": calendar.kind,
        "timezone": calendar.timezone,
        "weekdays": calendar.weekdays,
        "day_start": calendar.day_start.isoformat(),
        "day_end": calendar.day_end.isoformat(),
    }
    calendar.name = _name_free(SlaCalendar, name, calendar.id)
    calendar.kind, calendar.timezone = kind, timezone
    calendar.weekdays = ",".join(str(d) for d in sorted(set(weekdays)))
    calendar.day_start, calendar.day_end = day_start, day_end
    after = {
        **before,
        "name": calendar.name,
        "kind": kind,
        "timezone": timezone,
        "weekdays": calendar.weekdays,
        "day_start": day_start.isoformat(),
        "day_end": day_end.isoformat(),
    }
    record("sla_calendar.updated", actor, calendar, **diff(before, after))
    jobs.after_commit(retime_open_tickets)
    jobs.commit()


def add_holiday(calendar: SlaCalendar, day: date, name: str, actor: User) -> Holiday:
    if any(h.day == day for h in calendar.holidays):
        raise Conflict(f"{day.isoformat()} is a holiday already.", field="day")
    holiday = Holiday(calendar_id=calendar.id, day=day, name=name.strip() or "Holiday")
    db.session.add(holiday)
    db.session.flush()
    record("sla_calendar.holiday_added", actor, calendar, day=day, name=holiday.name)
    jobs.after_commit(retime_open_tickets)
    jobs.commit()
    return holiday


def remove_holiday(holiday: Holiday, actor: User) -> None:
    calendar = holiday.calendar
    record("sla_calendar.holiday_removed", actor, calendar, day=holiday.day, name=holiday.name)
    db.session.delete(holiday)
    jobs.after_commit(retime_open_tickets)
    jobs.commit()


def _open_tickets(priority: str | None = None):  # type: ignore[no-untyped-def]
    """Open tickets one by one (ids first, so no cursor stays open while rows change)."""
    stmt = select(Ticket.id).where(Ticket.status.in_(OPEN_STATUSES)).order_by(Ticket.id)
    if priority:
        stmt = stmt.where(Ticket.priority == priority)
    for ticket_id in db.session.scalars(stmt).all():
        ticket = db.session.get(Ticket, ticket_id)
        if ticket is not None:
            yield ticket


@jobs.job
def apply_policy_change(priority: str) -> int:
    """Give each open ticket of `priority` the new targets (kept as SLA events)."""
    now, count = utcnow(), 0
    for ticket in _open_tickets(priority):
        sla.priority_changed(ticket, now, note="policy changed")
        sla.recompute(ticket, now)
        count += 1
    db.session.commit()
    return count


@jobs.job
def retime_open_tickets() -> int:
    """Recompute due times after a calendar change (the events stay as they were)."""
    now, count = utcnow(), 0
    for ticket in _open_tickets():
        sla.recompute(ticket, now)
        count += 1
    db.session.commit()
    return count
