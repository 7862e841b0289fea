"""The ticket list's query: filters from the query string, sorting, paging, counts.
The list page, its htmx fragment and any export go through `tickets_query`."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

from sqlalchemy import Select, case, func, or_, select

from ..extensions import db
from ..paging import Page, paginate
from ..users.models import User
from .access import visible
from .models import SLA_STATES, STATUSES, TYPES, Ticket
from .setup_models import PRIORITIES

PRIORITY_RANK = case({p: i for i, p in enumerate(PRIORITIES)}, value=Ticket.priority)
SORTS = {
    "newest": (Ticket.id.desc(),),
    "oldest": (Ticket.id.asc(),),
    "priority": (PRIORITY_RANK, Ticket.id.desc()),
    "updated": (Ticket.updated_at.desc(), Ticket.id.desc()),
    "due": (Ticket.resolution_due_at.asc(), Ticket.id.asc()),
}


def _int(value: Any) -> int | None:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if 0 < number < 2**31 else None


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


@dataclass(frozen=True)
class TicketFilters:
    status: str = ""  # a status, "open", or "" (all)
    priority: str = ""
    type: str = ""
    team: int | None = None
    assignee: str = ""  # a user id, "none", or ""
    mine: bool = False
    sla: str = ""
    q: str = ""
    sort: str = "newest"
    page: int = 1

    @classmethod
    def from_args(cls, args: Any) -> TicketFilters:
        """Unknown or malformed values are dropped, never an error."""

        def pick(name: str, allowed: tuple[str, ...]) -> str:
            value = args.get(name, "")
            return value if value in allowed else ""

        assignee = args.get("assignee", "")
        return cls(
            status=pick("status", (*STATUSES, "open")),
            priority=pick("priority", PRIORITIES),
            type=pick("type", TYPES),
            team=_int(args.get("team")),
            assignee=assignee if assignee == "none" or _int(assignee) else "",
            mine=args.get("mine", "") in ("1", "true", "on"),
            sla=pick("sla", SLA_STATES),
            q=args.get("q", "").strip()[:200].replace("\x00", ""),
            sort=pick("sort", tuple(SORTS)) or "newest",
            page=min(_int(args.get("page")) or 1, 100_000),
        )

    def as_args(self, **changes: Any) -> dict[str, Any]:
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values.update(changes)
        out: dict[str, Any] = {}
        for key, value in values.items():
            if value in ("", None, False) or (key == "page" and value == 1):
                continue
            if key == "sort" and value == "newest":
                continue
            out[key] = 1 if value is True else value
        return out

    def without_status(self) -> TicketFilters:
        return replace(self, status="", page=1)


def tickets_query(filters: TicketFilters, user: User) -> Select[Any]:
    stmt = visible(select(Ticket), user)
    if filters.status == "open":
        stmt = stmt.where(Ticket.status.in_(("new", "assigned", "in_progress", "pending")))
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
        number = filters.q.upper().removeprefix("T-").lstrip("0")
        pattern = f"%{_escape_like(filters.q.lower())}%"
        text_match = func.lower(Ticket.subject).like(pattern, escape="\\")
        # A ticket number is at most nine digits; longer digit strings are only text.
        is_number = number.isdigit() and len(number) <= 9
        stmt = stmt.where(or_(text_match, Ticket.id == int(number)) if is_number else text_match)
    return stmt.order_by(*SORTS[filters.sort])


def list_tickets(filters: TicketFilters, user: User) -> Page[Ticket]:
    return paginate(tickets_query(filters, user), filters.page)


def status_counts(filters: TicketFilters, user: User) -> dict[str, int]:
    """How many tickets each status holds under the other filters (one query)."""
    base = tickets_query(filters.without_status(), user).order_by(None).subquery()
    rows = db.session.execute(select(base.c.status, func.count()).group_by(base.c.status))
    counts = {status: 0 for status in STATUSES}
    counts.update({status: n for status, n in rows})
    return counts
