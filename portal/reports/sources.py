"""What can be exported: one entry per list page. Each takes that page's filters from
the same query string through the same query function, so an export holds exactly
the rows the list shows, all its pages, seen through the same access helper.

Beside them, DOCUMENTS: reports built as one file (the monthly PDF) that travel the same
way as exports (an Export row, the same job, expiry, download checks and pages)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date
from typing import Any, BinaryIO, ClassVar

from flask import current_app
from sqlalchemy import String, Text, case, cast, func, select
from sqlalchemy.orm import aliased

from ..audits.json_column import encode_data
from ..audits.models import AuditEvent
from ..audits.queries import AuditFilters, events_query
from ..changes import access as change_access
from ..changes.models import STATUS_LABELS as CHANGE_STATUS_LABELS
from ..changes.models import ChangeRequest, ChangeVote
from ..changes.queries import ChangeFilters, changes_query
from ..security import Permission, role_has
from ..tickets.queries import TicketFilters
from ..timeutil import utcnow
from ..users.models import User
from ..users.queries import UserFilters, users_query
from . import monthly_figures, monthly_pdf, ticket_plans
from .columns import INT, PLAIN, TEXT, TIME, Column, Format, Plan, number_format, people


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

    is_document: ClassVar[bool] = False
    mimetype: ClassVar[str] = "text/csv; charset=utf-8"

    def allows(self, user: User) -> bool:
        return bool(user.is_active) and self.may_read(user)

    def query_string(self, filters: Any) -> dict[str, Any]:
        """The filters as the list writes them, paging dropped: an export is every page."""
        args = dict(filters.as_args())
        args.pop("page", None)
        return args


# -- change requests ------------------------------------------------------------------------


def _change_plan(filters: ChangeFilters, user: User) -> Plan:
    requester, implementer = people().alias("requester"), people().alias("implementer")
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


# -- the audit log ---------------------------------------------------------------------------

# An event's data as the JSON text it is stored as: its canonical text (sorted keys, no
# spaces; audits/json_column.py), which PostgreSQL's json type keeps as written and Python
# writes again from the value. It always starts with "{", so there is nothing to defuse.
JSON_TEXT = Format(
    lambda value, zone: "" if value is None else encode_data(value),
    lambda expr: cast(expr, Text),
)


def _audit_plan(filters: AuditFilters, user: User) -> Plan:
    # The days of a date range are the reader's, as the viewer showed them.
    zone = user.timezone or current_app.config["SETTINGS"].TIMEZONE
    listed = events_query(replace(filters, zone=zone))
    columns = [
        Column("Id", AuditEvent.id, INT),
        Column("Time", AuditEvent.created_at, TIME),
        Column("Actor", AuditEvent.actor_label),
        Column("Action", AuditEvent.action, PLAIN),
        Column("Target type", AuditEvent.target_type, PLAIN),
        Column("Target id", AuditEvent.target_id, TEXT),
        Column("IP", AuditEvent.ip, TEXT),
        Column("User agent", AuditEvent.user_agent, TEXT),
        Column("Data", AuditEvent.data, JSON_TEXT),
        Column("Hash", AuditEvent.hash, PLAIN),
    ]
    return Plan(columns, listed.with_only_columns(*(c.expr for c in columns)), listed)


def may_read_tickets(user: User) -> bool:
    return role_has(user.role, Permission.TICKETS_READ)


SOURCES: dict[str, Source] = {
    source.kind: source
    for source in (
        Source(
            "tickets",
            "Tickets",
            may_read_tickets,
            "tickets.index",
            TicketFilters.from_args,
            ticket_plans.ticket_plan,
            ticket_plans.ticket_scope,
        ),
        Source(
            "replies",
            "Ticket replies",
            may_read_tickets,
            "tickets.index",
            TicketFilters.from_args,
            ticket_plans.reply_plan,
            ticket_plans.reply_scope,
        ),
        Source(
            "incidents",
            "Incidents with their reviews",
            may_read_tickets,
            "tickets.index",
            TicketFilters.from_args,
            ticket_plans.incident_plan,
            ticket_plans.ticket_scope,
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
            "audit",
            "Audit log",
            lambda user: role_has(user.role, Permission.AUDITS_READ),
            "audits.index",
            AuditFilters.from_args,
            _audit_plan,
            lambda user: "all",
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


# -- documents ------------------------------------------------------------------------------

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Document:
    """A report built as one file. `build(args, zone, reader, out, progress)` writes it
    and returns its page count; `args` is the Export row's query, already validated."""

    kind: str
    label: str
    permission: Permission
    # The page that asks for it; the export's query string opens it on the same choice.
    list_endpoint: str
    filename: Callable[[dict[str, str]], str]
    build: Callable[[dict[str, str], str, str, BinaryIO, Progress], int]
    mimetype: str = "application/pdf"
    # What its count counts: the PDF's pages, or the tables of a figures file.
    unit: str = "page"

    is_document: ClassVar[bool] = True

    def allows(self, user: User) -> bool:
        return bool(user.is_active) and role_has(user.role, self.permission)

    def scope(self, user: User) -> str:
        # Whoever may run reports sees every figure: nothing narrows a document.
        return "all"


def stored_month(args: dict[str, str]) -> date:
    """The month a row's query names (checked when it was asked for)."""
    found = monthly_figures.parse_month(args.get("month", ""), date.max)
    if isinstance(found, str):
        raise ValueError(found)
    return found


def _build_monthly(
    args: dict[str, str], zone: str, reader: str, out: BinaryIO, progress: Progress
) -> int:
    return monthly_pdf.build_monthly_pdf(stored_month(args), zone, reader, out, progress)


def _build_desk_csv(
    args: dict[str, str], zone: str, reader: str, out: BinaryIO, progress: Progress
) -> int:
    """The service-desk report's figures for the days and filters `args` names, as one CSV."""
    from .desk_figures import desk_figures
    from .figure_csv import figures_csv
    from .period import ReportPeriod

    period = ReportPeriod(
        period="custom",
        start=date.fromisoformat(args["start"]),
        end=date.fromisoformat(args["end"]),
        team=int(args["team"]) if args.get("team") else None,
        priority=args.get("priority", ""),
        type=args.get("type", ""),
        zone=zone,
    )
    progress(0, 1)
    figures = desk_figures(period, utcnow())
    out.write("\ufeff".encode() + figures_csv(figures).encode())
    progress(1, 1)
    return len(figures)


DOCUMENTS: dict[str, Document] = {
    document.kind: document
    for document in (
        Document(
            "monthly_report",
            "Monthly operations report",
            Permission.REPORTS_RUN,
            "reports.monthly",
            lambda args: f"operations-report-{stored_month(args):%Y-%m}.pdf",
            _build_monthly,
        ),
        Document(
            "desk_report",
            "Service-desk report (figures)",
            Permission.REPORTS_RUN,
            "reports.service_desk",
            lambda args: f"service-desk-{args['start']}-{args['end']}.csv",
            _build_desk_csv,
            mimetype="text/csv; charset=utf-8",
            unit="table",
        ),
    )
}
KINDS: dict[str, Source | Document] = {**SOURCES, **DOCUMENTS}
