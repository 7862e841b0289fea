"""What can be exported: one entry per list page. Each takes that page's filters from
the same query string through the same query function, so an export holds exactly
the rows the list shows, all its pages, seen through the same access helper."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, String, case, cast, func, select
from sqlalchemy.orm import aliased

from ..changes import access as change_access
from ..changes.models import STATUS_LABELS as CHANGE_STATUS_LABELS
from ..changes.models import ChangeRequest, ChangeVote
from ..changes.queries import ChangeFilters, changes_query
from ..security import Permission, role_has
from ..tickets import access as ticket_access
from ..tickets.models import SEVERITY, STATUS_LABELS, Ticket
from ..tickets.queries import TicketFilters, tickets_query
from ..tickets.setup_models import Category, Team
from ..users.models import User
from ..users.queries import UserFilters, users_query
from .columns import INT, MINUTES, PLAIN, TIME, Column, defused, lookup, number_format


@dataclass(frozen=True)
class Plan:
    """An export's columns and its rows: `statement` selects exactly the columns' values."""

    columns: list[Column]
    statement: Select[Any]
    # The list's own query, for the row count (the lookups joined above never add rows).
    listed: Select[Any]

    @property
    def headers(self) -> list[str]:
        return [c.header for c in self.columns]


@dataclass(frozen=True)
class Source:
    kind: str
    label: str
    # Whether a person may open the list, so ask for its export and later download it;
    # its rows are narrowed further by the list's own access helper (`scope` says how far).
    may_read: Callable[[User], bool]
    list_endpoint: str
    read_filters: Callable[[Any], Any]
    plan: Callable[[Any, User], Plan]
    scope: Callable[[User], str]

    def allows(self, user: User) -> bool:
        return bool(user.is_active) and self.may_read(user)

    def query_string(self, filters: Any) -> dict[str, Any]:
        """The filters as the list writes them, paging dropped: an export is every page."""
        args = dict(filters.as_args())
        args.pop("page", None)
        return args


# -- tickets --------------------------------------------------------------------------------


def _people() -> Any:
    return lookup(User.id, defused(User.name).label("name"), defused(User.email).label("email"))


def _ticket_plan(filters: TicketFilters, user: User) -> Plan:
    assignee, requester = _people().alias("assignee"), _people().alias("requester")
    team = lookup(Team.id, defused(Team.name).label("name")).alias("team")
    category = lookup(Category.id, defused(Category.name).label("name")).alias("category")
    severity = case((Ticket.type == "incident", case(SEVERITY, value=Ticket.priority)), else_=None)
    columns = [
        Column("Number", Ticket.id, number_format("T-")),
        Column("Type", Ticket.type, PLAIN),
        Column("Subject", Ticket.subject),
        Column("Category", category.c.name, PLAIN),
        Column("Priority", Ticket.priority, PLAIN),
        Column("Severity", severity, PLAIN),
        Column("Status", case(STATUS_LABELS, value=Ticket.status), PLAIN),
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
    # counting: every match is read, so the plain text match, not the ranked one.
    listed = tickets_query(filters, user, counting=True)
    stmt = (
        listed.outerjoin_from(Ticket, category, category.c.id == Ticket.category_id)
        .outerjoin_from(Ticket, team, team.c.id == Ticket.team_id)
        .outerjoin_from(Ticket, assignee, assignee.c.id == Ticket.assignee_id)
        .join_from(Ticket, requester, requester.c.id == Ticket.requester_id)
    )
    return Plan(columns, stmt.with_only_columns(*(c.expr for c in columns)), listed)


def _ticket_scope(user: User) -> str:
    return "all" if ticket_access.sees_all(user) else f"own:{user.id}"


# -- change requests ------------------------------------------------------------------------


def _change_plan(filters: ChangeFilters, user: User) -> Plan:
    requester, implementer = _people().alias("requester"), _people().alias("implementer")
    approver = aliased(User)
    votes = (
        select(
            func.aggregate_strings(
                approver.name
                + " ("
                + ChangeVote.decision
                + ", round "
                + cast(ChangeVote.round, String)
                + ")",
                "; ",
            )
        )
        .select_from(ChangeVote)
        .join(approver, approver.id == ChangeVote.approver_id)
        .where(ChangeVote.change_id == ChangeRequest.id)
        .correlate(ChangeRequest)
        .scalar_subquery()
    )
    columns = [
        Column("Number", ChangeRequest.id, number_format("CR-")),
        Column("Title", ChangeRequest.title),
        Column("Type", ChangeRequest.type, PLAIN),
        Column("Status", case(CHANGE_STATUS_LABELS, value=ChangeRequest.status), PLAIN),
        Column("Risk", ChangeRequest.risk, PLAIN),
        Column("Impact", ChangeRequest.impact, INT),
        Column("Likelihood", ChangeRequest.likelihood, INT),
        Column("Requester", requester.c.name, PLAIN),
        Column("Implementer", implementer.c.name, PLAIN),
        Column("Window start", ChangeRequest.window_start, TIME),
        Column("Window end", ChangeRequest.window_end, TIME),
        Column("Approval round", ChangeRequest.approval_round, INT),
        Column("Votes", votes),
        Column("Submitted", ChangeRequest.submitted_at, TIME),
        Column("Decided", ChangeRequest.decided_at, TIME),
        Column("Closed", ChangeRequest.closed_at, TIME),
        Column("Created", ChangeRequest.created_at, TIME),
    ]
    listed = changes_query(filters, user)
    stmt = listed.join_from(
        ChangeRequest, requester, requester.c.id == ChangeRequest.requester_id
    ).outerjoin_from(ChangeRequest, implementer, implementer.c.id == ChangeRequest.implementer_id)
    return Plan(columns, stmt.with_only_columns(*(c.expr for c in columns)), listed)


def _change_scope(user: User) -> str:
    return "all" if change_access.sees_all(user) else f"own:{user.id}"


# -- users ----------------------------------------------------------------------------------


def _user_plan(filters: UserFilters, user: User) -> Plan:
    status = case((User.is_active.is_(False), "deactivated"), else_="active")
    columns = [
        Column("Name", User.name),
        Column("Email", User.email),
        Column("Role", User.role, PLAIN),
        Column("Status", status, PLAIN),
        Column("Time zone", User.timezone, PLAIN),
        Column("Last sign-in", User.last_login_at, TIME),
        Column("Locked until", User.locked_until, TIME),
        Column("Created", User.created_at, TIME),
    ]
    listed = users_query(filters)
    return Plan(columns, listed.with_only_columns(*(c.expr for c in columns)), listed)


SOURCES: dict[str, Source] = {
    source.kind: source
    for source in (
        Source(
            "tickets",
            "Tickets",
            lambda user: role_has(user.role, Permission.TICKETS_READ),
            "tickets.index",
            TicketFilters.from_args,
            _ticket_plan,
            _ticket_scope,
        ),
        Source(
            "changes",
            "Change requests",
            lambda user: (
                change_access.sees_all(user) or role_has(user.role, Permission.CHANGES_CREATE)
            ),
            "changes.index",
            ChangeFilters.from_args,
            _change_plan,
            _change_scope,
        ),
        Source(
            "users",
            "Users",
            lambda user: role_has(user.role, Permission.USERS_MANAGE),
            "users.user_list",
            UserFilters.from_args,
            _user_plan,
            lambda user: "all",
        ),
    )
}
