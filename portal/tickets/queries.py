"""The ticket list's query: filters from the query string, sorting, paging, counts.
The list page, its htmx fragment and any export go through `tickets_query`, which
always starts from `visible()`: a search never widens what a person may see."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, ClassVar, NamedTuple

from sqlalchemy import ColumnElement, Select, case, func, or_, select
from sqlalchemy.engine import Row
from sqlalchemy.orm import Bundle, aliased

from ..extensions import db
from ..paging import Page, paginate
from ..query_args import QueryArgs, pick, positive_int
from ..users.models import User
from . import search, ticket_cache
from .access import visible
from .models import OPEN_STATUSES, SLA_STATES, STATUSES, TYPES, Ticket
from .setup_models import PRIORITIES, Team

PRIORITY_RANK = case({p: i for i, p in enumerate(PRIORITIES)}, value=Ticket.priority)
SORTS = {
    # The default: best match first while searching (see tickets_query), and without
    # search text every ticket matches alike, so the newest come first.
    "relevance": (Ticket.id.desc(),),
    "newest": (Ticket.id.desc(),),
    "oldest": (Ticket.id.asc(),),
    "priority": (PRIORITY_RANK, Ticket.id.desc()),
    "updated": (Ticket.updated_at.desc(), Ticket.id.desc()),
    "due": (Ticket.resolution_due_at.asc(), Ticket.id.asc()),
}


def ticket_number(q: str) -> int | None:
    """The id that `T-000123` or `123` names, if `q` is one."""
    digits = q.strip().upper().removeprefix("T-").lstrip("0")
    # A ticket number is at most nine digits; longer digit strings are only text.
    if digits.isdigit() and len(digits) <= 9:
        return int(digits)
    return None


@dataclass(frozen=True)
class TicketFilters(QueryArgs):
    DEFAULT_SORT: ClassVar[str] = "relevance"

    status: str = ""  # a status, "open", or "" (all)
    priority: str = ""
    type: str = ""
    team: int | None = None
    assignee: str = ""  # a user id, "none", or ""
    mine: bool = False
    sla: str = ""
    q: str = ""
    sort: str = "relevance"
    page: int = 1

    @classmethod
    def from_args(cls, args: Any) -> TicketFilters:
        """Unknown or malformed values are dropped, never an error."""

        assignee = args.get("assignee", "")
        return cls(
            status=pick(args, "status", (*STATUSES, "open")),
            priority=pick(args, "priority", PRIORITIES),
            type=pick(args, "type", TYPES),
            team=positive_int(args.get("team")),
            assignee=assignee if assignee == "none" or positive_int(assignee) else "",
            mine=args.get("mine", "") in ("1", "true", "on"),
            sla=pick(args, "sla", SLA_STATES),
            q=args.get("q", "").replace("\x00", "").strip()[:200],
            sort=pick(args, "sort", tuple(SORTS)) or "relevance",
            page=min(positive_int(args.get("page")) or 1, 100_000),
        )

    def without_status(self) -> TicketFilters:
        return replace(self, status="", page=1)


def tickets_query(filters: TicketFilters, user: User, counting: bool = False) -> Select[Any]:
    """The tickets `user` may see under `filters`, sorted; `counting` when every matching
    row will be read (see search.match_clause)."""
    stmt = visible(select(Ticket), user)
    if filters.status == "open":
        stmt = stmt.where(Ticket.status.in_(OPEN_STATUSES))
    elif filters.status:
        stmt = stmt.where(Ticket.status == filters.status)
    if filters.priority:
        stmt = stmt.where(Ticket.priority == filters.priority)
    if filters.type:
        stmt = stmt.where(Ticket.type == filters.type)
    if filters.team:
        stmt = stmt.where(Ticket.team_id == filters.team)
    if filters.assignee == "none":
        stmt = stmt.where(Ticket.assignee_id.is_(None))
    elif filters.assignee:
        stmt = stmt.where(Ticket.assignee_id == int(filters.assignee))
    if filters.mine:
        stmt = stmt.where(or_(Ticket.assignee_id == user.id, Ticket.requester_id == user.id))
    if filters.sla:
        stmt = stmt.where(Ticket.sla_state == filters.sla)
    if filters.q:
        return _search(stmt, filters, counting)
    return stmt.order_by(*SORTS[filters.sort])


def _search(stmt: Select[Any], filters: TicketFilters, counting: bool) -> Select[Any]:
    """Tickets whose text matches `q`, or the one it names by number. In the default
    order: that ticket first, then the best text matches, then the newest."""
    number = ticket_number(filters.q)
    ranked = filters.sort == "relevance" and not counting
    hits = search.ranked_matches(filters.q) if ranked else None
    if hits is None:
        text_match = search.match_clause(filters.q, all_matches=counting)
    else:
        stmt = stmt.outerjoin(hits, hits.c.ticket_id == Ticket.id)
        text_match = hits.c.ticket_id.is_not(None)
    stmt = stmt.where(text_match if number is None else or_(text_match, Ticket.id == number))
    if hits is None:
        return stmt.order_by(*SORTS[filters.sort])
    order: list[ColumnElement[Any]] = []
    if number is not None:
        order.append(case((Ticket.id == number, 0), else_=1))
    return stmt.order_by(*order, hits.c.score, Ticket.id.desc())


class TicketRow(NamedTuple):
    """One line of the list: the columns it shows, as plain values. Reading rows instead
    of Ticket objects skips the identity map, relationship loading and attribute
    instrumentation for every line; nothing on a row can lazy-load a query per line."""

    id: int
    type: str
    subject: str
    status: str
    priority: str
    sla_state: str
    resolution_due_at: datetime | None
    updated_at: datetime
    team_name: str | None
    assignee_name: str | None

    # The model's own properties, so a list line and the ticket page always agree.
    number = Ticket.number
    is_open = Ticket.is_open
    status_label = Ticket.status_label
    priority_label = Ticket.priority_label


class _TicketRows(Bundle):  # type: ignore[type-arg]
    """The list's columns, delivered as one TicketRow per result row."""

    def create_row_processor(
        self, query: Any, procs: Sequence[Callable[[Row[Any]], Any]], labels: Sequence[str]
    ) -> Callable[[Row[Any]], TicketRow]:
        def make(row: Row[Any]) -> TicketRow:
            return TicketRow(*[proc(row) for proc in procs])

        return make


_ASSIGNEE = aliased(User, name="assignee")
LIST_ROW = _TicketRows(
    "ticket_row",
    Ticket.id,
    Ticket.type,
    Ticket.subject,
    Ticket.status,
    Ticket.priority,
    Ticket.sla_state,
    Ticket.resolution_due_at,
    Ticket.updated_at,
    Team.name,
    _ASSIGNEE.name,
)


def list_rows_query(filters: TicketFilters, user: User) -> Select[Any]:
    """`tickets_query` narrowed to what a list line shows, team and assignee names joined."""
    return (
        tickets_query(filters, user)
        .outerjoin(Team, Team.id == Ticket.team_id)
        .outerjoin(_ASSIGNEE, _ASSIGNEE.id == Ticket.assignee_id)
        .with_only_columns(LIST_ROW)
    )


# Above this many matches a search lists newest first instead of ranking them all.
RANK_AT_MOST = 2000


def list_tickets(
    filters: TicketFilters, user: User, counts: dict[str, int] | None = None
) -> Page[TicketRow]:
    """A page of the list. Given the status counts, its total comes from them, which
    spares a second count over the same rows."""
    total = None if counts is None else total_from_counts(filters, counts)
    if filters.sort == "relevance" and filters.q and total is not None and total > RANK_AT_MOST:
        # Ranking thousands of matches costs far more than it tells: newest first instead.
        filters = replace(filters, sort="newest")
    return paginate(list_rows_query(filters, user), filters.page, total=total)


def total_from_counts(filters: TicketFilters, counts: dict[str, int]) -> int:
    if filters.status == "open":
        return sum(counts[s] for s in OPEN_STATUSES)
    if filters.status:
        return counts[filters.status]
    return sum(counts.values())


def status_counts(filters: TicketFilters, user: User) -> dict[str, int]:
    """How many tickets each status holds under the other filters: one query, or none
    while the same question's answer is cached (see ticket_cache)."""
    return ticket_cache.counts(filters, user, lambda: _count_statuses(filters, user))


def _count_statuses(filters: TicketFilters, user: User) -> dict[str, int]:
    # Counting needs no ranking: the plain match is the cheaper query for the same rows.
    base = tickets_query(filters.without_status(), user, counting=True).order_by(None).subquery()
    rows = db.session.execute(select(base.c.status, func.count()).group_by(base.c.status))
    counts = {status: 0 for status in STATUSES}
    counts.update({status: n for status, n in rows})
    return counts
