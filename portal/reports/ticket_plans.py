"""Exports that start from the ticket list: its tickets, their replies, and its incidents
with their reviews. All three read the list's filters through `tickets_query`, so each
holds what the list shows, seen through the tickets' one access helper."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from sqlalchemy import Select, case, func, select

from ..extensions import db
from ..tickets import access
from ..tickets.extra_models import ActionItem, IncidentReview
from ..tickets.models import SEVERITY, STATUS_LABELS, Ticket, TicketReply
from ..tickets.queries import RANK_AT_MOST, TicketFilters, tickets_query
from ..tickets.setup_models import Category, Team
from ..timeutil import utcnow
from ..users.models import User
from .columns import (
    BOOL,
    INT,
    MINUTES,
    PLAIN,
    TIME,
    Column,
    Plan,
    defused,
    lookup,
    number_format,
    people,
)

NUMBER = number_format("T-")
SEVERITY_OF = case(SEVERITY, value=Ticket.priority)
STATUS_OF = case(STATUS_LABELS, value=Ticket.status)


def _listed(filters: TicketFilters, user: User) -> Select[Any]:
    """The list's query in the list's order: a search it ranks is ranked here too, and one
    with more matches than it ranks is newest first, as there (see `list_tickets`)."""
    if filters.q and filters.sort == "relevance":
        plain = tickets_query(filters, user, counting=True).order_by(None).subquery()
        if (db.session.scalar(select(func.count()).select_from(plain)) or 0) <= RANK_AT_MOST:
            return tickets_query(filters, user)
        filters = replace(filters, sort="newest")
    # counting: every match is read, so the plain text match, not the ranked one.
    return tickets_query(filters, user, counting=True)


def _with_people(stmt: Select[Any]) -> tuple[Select[Any], Any, Any, Any, Any]:
    """The list joined to the names a row shows, each made once per person or team."""
    assignee, requester = people().alias("assignee"), people().alias("requester")
    team = lookup(Team.id, defused(Team.name).label("name")).alias("team")
    category = lookup(Category.id, defused(Category.name).label("name")).alias("category")
    joined = (
        stmt.outerjoin_from(Ticket, category, category.c.id == Ticket.category_id)
        .outerjoin_from(Ticket, team, team.c.id == Ticket.team_id)
        .outerjoin_from(Ticket, assignee, assignee.c.id == Ticket.assignee_id)
        .join_from(Ticket, requester, requester.c.id == Ticket.requester_id)
    )
    return joined, assignee, requester, team, category


def ticket_plan(filters: TicketFilters, user: User) -> Plan:
    listed = _listed(filters, user)
    stmt, assignee, requester, team, category = _with_people(listed)
    severity = case((Ticket.type == "incident", SEVERITY_OF), else_=None)
    columns = [
        Column("Number", Ticket.id, NUMBER),
        Column("Type", Ticket.type, PLAIN),
        Column("Subject", Ticket.subject),
        Column("Category", category.c.name, PLAIN),
        Column("Priority", Ticket.priority, PLAIN),
        Column("Severity", severity, PLAIN),
        Column("Status", STATUS_OF, PLAIN),
        Column("Team", team.c.name, PLAIN),
        Column("Assignee", assignee.c.name, PLAIN),
        Column("Requester", requester.c.name, PLAIN),
        Column("Requester email", requester.c.email, PLAIN),
        Column("Level", Ticket.level, PLAIN),
        Column("Created", Ticket.created_at, TIME),
        Column("First response", Ticket.first_response_at, TIME),
        Column("Resolved", Ticket.resolved_at, TIME),
        Column("Closed", Ticket.closed_at, TIME),
        Column("Response due", Ticket.response_due_at, TIME),
        Column("Response SLA", Ticket.response_state, PLAIN),
        Column("Resolution due", Ticket.resolution_due_at, TIME),
        Column("Resolution SLA", Ticket.resolution_state, PLAIN),
        Column("Business minutes to first response", Ticket.response_seconds, MINUTES),
        Column("Business minutes to resolution", Ticket.resolution_seconds, MINUTES),
        Column("Minutes paused", Ticket.paused_seconds, MINUTES),
    ]
    return Plan(columns, stmt.with_only_columns(*(c.expr for c in columns)), listed)


def ticket_scope(user: User) -> str:
    return "all" if access.sees_all(user) else f"own:{user.id}"


def reply_plan(filters: TicketFilters, user: User) -> Plan:
    """Every reply of the listed tickets, in the list's order, oldest reply first; internal
    notes only for those who may see them (the ticket page's own rule)."""
    author = people().alias("author")
    listed = _listed(filters, user).join(TicketReply, TicketReply.ticket_id == Ticket.id)
    if not access.can_see_internal(user):
        listed = listed.where(TicketReply.is_internal.is_(False))
    listed = listed.order_by(TicketReply.id)
    stmt = listed.join_from(TicketReply, author, author.c.id == TicketReply.author_id)
    columns = [
        Column("Ticket", Ticket.id, NUMBER),
        Column("Subject", Ticket.subject),
        Column("Reply", TicketReply.id, INT),
        Column("Written", TicketReply.created_at, TIME),
        Column("Author", author.c.name, PLAIN),
        Column("Author email", author.c.email, PLAIN),
        Column("Internal note", TicketReply.is_internal, BOOL),
        Column("Text", TicketReply.body),
    ]
    return Plan(columns, stmt.with_only_columns(*(c.expr for c in columns)), listed)


def reply_scope(user: User) -> str:
    return ticket_scope(user) + ("+internal" if access.can_see_internal(user) else "")


def _action_items(*conditions: Any) -> Any:
    """How many of the review's action items meet `conditions`; empty without a review."""
    count = (
        select(func.count(ActionItem.id))
        .where(ActionItem.review_id == IncidentReview.id, *conditions)
        .correlate(IncidentReview)
        .scalar_subquery()
    )
    return case((IncidentReview.id.is_(None), None), else_=count)


def incident_plan(filters: TicketFilters, user: User) -> Plan:
    """The list's incidents (whatever its type filter), with their reviews and action items."""
    listed = _listed(replace(filters, type="incident"), user)
    joined, assignee, _, team, _ = _with_people(listed)
    reviewer = people().alias("reviewer")
    stmt = joined.outerjoin_from(Ticket, IncidentReview, IncidentReview.ticket_id == Ticket.id)
    stmt = stmt.outerjoin_from(IncidentReview, reviewer, reviewer.c.id == IncidentReview.author_id)
    open_items = ActionItem.done_at.is_(None)
    overdue = ActionItem.due_on < utcnow().date()
    columns = [
        Column("Number", Ticket.id, NUMBER),
        Column("Subject", Ticket.subject),
        Column("Severity", SEVERITY_OF, PLAIN),
        Column("Status", STATUS_OF, PLAIN),
        Column("Team", team.c.name, PLAIN),
        Column("Assignee", assignee.c.name, PLAIN),
        Column("Opened", Ticket.created_at, TIME),
        Column("Acknowledged", Ticket.first_response_at, TIME),
        Column("Resolved", Ticket.resolved_at, TIME),
        Column("Closed", Ticket.closed_at, TIME),
        Column("Business minutes to acknowledge", Ticket.response_seconds, MINUTES),
        Column("Business minutes to resolve", Ticket.resolution_seconds, MINUTES),
        Column("Response SLA", Ticket.response_state, PLAIN),
        Column("Resolution SLA", Ticket.resolution_state, PLAIN),
        Column("Review written", IncidentReview.id.is_not(None), BOOL),
        Column("Review by", reviewer.c.name, PLAIN),
        Column("Root cause", IncidentReview.root_cause),
        Column("Action items", _action_items(), INT),
        Column("Action items open", _action_items(open_items), INT),
        Column("Action items overdue", _action_items(open_items, overdue), INT),
    ]
    return Plan(columns, stmt.with_only_columns(*(c.expr for c in columns)), listed)
