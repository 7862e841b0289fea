"""The change list's query: filters from the query string, sorting and paging. The list,
its htmx fragment and the approver's inbox all start from `visible()`, so no filter
ever widens what a person may see."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any, ClassVar

from sqlalchemy import Select, and_, exists, func, or_, select
from sqlalchemy.orm import aliased, selectinload

from .. import cache
from ..errors import ServiceError
from ..extensions import db
from ..paging import PER_PAGE, Page
from ..query_args import QueryArgs, pick, positive_int
from ..security import Permission, role_has
from ..users.models import User
from .access import sees_all, visible
from .conflicts import to_utc
from .models import (
    STATUSES,
    TYPES,
    ChangeLabels,
    ChangeRequest,
    ChangeVote,
    change_services,
    change_tickets,
)
from .risk import RISKS
from .setup_models import Service

SORTS = {
    "newest": (ChangeRequest.id.desc(),),
    # Changes without a window sort last, whatever the database does with NULLs.
    "window": (
        ChangeRequest.window_start.is_(None),
        ChangeRequest.window_start.asc(),
        ChangeRequest.id.asc(),
    ),
}


def _date(value: Any) -> date | None:
    try:
        return date.fromisoformat(str(value)[:10]) if value else None
    except ValueError:
        return None


@dataclass(frozen=True)
class ChangeFilters(QueryArgs):
    DEFAULT_SORT: ClassVar[str] = "newest"

    status: str = ""
    type: str = ""
    risk: str = ""
    service: int | None = None
    window_from: date | None = None  # windows ending on or after this day (viewer's zone)
    window_to: date | None = None  # windows starting on or before this day
    mine: bool = False
    awaiting: bool = False  # waiting for the viewer's vote
    sort: str = "newest"
    page: int = 1

    @classmethod
    def from_args(cls, args: Any) -> ChangeFilters:
        """Unknown or malformed values are dropped, never an error."""

        return cls(
            status=pick(args, "status", STATUSES),
            type=pick(args, "type", TYPES),
            risk=pick(args, "risk", RISKS),
            service=positive_int(args.get("service")),
            window_from=_date(args.get("window_from")),
            window_to=_date(args.get("window_to")),
            mine=args.get("mine", "") in ("1", "true", "on"),
            awaiting=args.get("awaiting", "") == "me",
            sort=pick(args, "sort", tuple(SORTS)) or "newest",
            page=min(positive_int(args.get("page")) or 1, 100_000),
        )

    def arg_value(self, key: str, value: Any) -> Any:
        if key == "awaiting":
            return "me"
        if isinstance(value, date):
            return value.isoformat()
        return super().arg_value(key, value)


def _day_start_utc(day: date, zone: str) -> datetime:
    start = datetime.combine(day, time.min)
    try:
        return to_utc(start, zone)
    except ServiceError:
        # Midnight skipped by a clock change (or an unknown zone): the day as UTC will do.
        return start


def may_vote(user: User) -> bool:
    return bool(user.is_active and role_has(user.role, Permission.CHANGES_APPROVE))


def awaiting_vote(user: User) -> Any:
    """The SQL twin of approvals.waiting_on: in review, not the user's own change nor one
    they implement, and no vote from them in the current round."""
    if not may_vote(user):
        return ChangeRequest.id.is_(None)
    voted = exists().where(
        ChangeVote.change_id == ChangeRequest.id,
        ChangeVote.round == ChangeRequest.approval_round,
        ChangeVote.approver_id == user.id,
    )
    return and_(
        ChangeRequest.status == "in_review",
        ChangeRequest.requester_id != user.id,
        or_(ChangeRequest.implementer_id.is_(None), ChangeRequest.implementer_id != user.id),
        ~voted,
    )


def changes_query(filters: ChangeFilters, user: User) -> Select[Any]:
    stmt = visible(select(ChangeRequest), user)
    if filters.status:
        stmt = stmt.where(ChangeRequest.status == filters.status)
    if filters.type:
        stmt = stmt.where(ChangeRequest.type == filters.type)
    if filters.risk:
        stmt = stmt.where(ChangeRequest.risk == filters.risk)
    if filters.service:
        stmt = stmt.where(
            ChangeRequest.id.in_(
                select(change_services.c.change_id).where(
                    change_services.c.service_id == filters.service
                )
            )
        )
    zone = user.timezone or "UTC"
    if filters.window_from:
        stmt = stmt.where(ChangeRequest.window_end > _day_start_utc(filters.window_from, zone))
    if filters.window_to:
        next_day = filters.window_to + timedelta(days=1)
        stmt = stmt.where(ChangeRequest.window_start < _day_start_utc(next_day, zone))
    if filters.mine:
        stmt = stmt.where(
            or_(ChangeRequest.requester_id == user.id, ChangeRequest.implementer_id == user.id)
        )
    if filters.awaiting:
        stmt = stmt.where(awaiting_vote(user))
    return stmt.order_by(*SORTS[filters.sort])


@dataclass
class ListedChange(ChangeLabels):
    """What a row of the change list shows."""

    id: int
    title: str
    type: str
    status: str
    risk: str
    window_start: datetime | None
    window_end: datetime | None
    requester_name: str
    implementer_name: str | None
    services: list[str] = field(default_factory=list)


def _question(filters: ChangeFilters, user: User) -> tuple[str, list[str]]:
    """A digest naming the list's question (who sees what, the filters, the zone the
    window filter reads days in) and the tables its answer is read from."""
    personal = filters.mine or filters.awaiting or not sees_all(user)
    scope = f"user:{user.id}" if personal else "all"
    question = [scope, filters.as_args(page=None), user.timezone or "UTC"]
    digest = hashlib.sha256(json.dumps(question, sort_keys=True).encode()).hexdigest()[:32]
    tables = [ChangeRequest.__tablename__]
    if filters.awaiting:
        tables.append(ChangeVote.__tablename__)
    return digest, tables


def _total(filters: ChangeFilters, user: User, stmt: Select[Any]) -> int:
    """How many changes match: shared by everyone who sees the same changes and asks the
    same question until a change is written, so paging and the list's default filters do
    not count the table on every page."""
    digest, tables = _question(filters, user)
    count = select(func.count()).select_from(stmt.order_by(None).subquery())
    return cache.shared(tables, f"list-total:{digest}", lambda: db.session.scalar(count) or 0)


def list_changes(filters: ChangeFilters, user: User) -> Page[ListedChange]:
    """A page of the list: its total and its rows, each shared by everyone asking the
    same question until a change, a person, a service (or, for "awaiting my vote", a
    vote) is written; else the count, the rows and their services' names, three queries."""
    stmt = changes_query(filters, user)
    total = _total(filters, user, stmt)
    # As paging.paginate, which loads entities: a page past the end shows the last one.
    number = min(max(1, filters.page), max(1, -(-total // PER_PAGE)))
    digest, tables = _question(filters, user)
    rows = cache.shared(
        [*tables, User.__tablename__, Service.__tablename__],
        f"list-page:{digest}:{number}",
        lambda: _page_rows(stmt, number),
    )
    items = [
        ListedChange(
            *row[:5],
            _time(row[5]),
            _time(row[6]),
            *row[7:9],
            services=list(row[9]),
        )
        for row in rows
    ]
    return Page(items, number, PER_PAGE, total)


def _time(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def _page_rows(stmt: Select[Any], number: int) -> list[list[Any]]:
    """One page of rows as plain JSON values: the changes' columns with their people's
    names, then their services' names (plain rows, not entities: whole changes with their
    plans and texts, and whole people, were most of the page)."""
    requester, implementer = aliased(User), aliased(User)
    shown = db.session.execute(
        stmt.with_only_columns(
            ChangeRequest.id,
            ChangeRequest.title,
            ChangeRequest.type,
            ChangeRequest.status,
            ChangeRequest.risk,
            ChangeRequest.window_start,
            ChangeRequest.window_end,
            requester.name,
            implementer.name,
        )
        .join(requester, requester.id == ChangeRequest.requester_id)
        .outerjoin(implementer, implementer.id == ChangeRequest.implementer_id)
        .limit(PER_PAGE)
        .offset((number - 1) * PER_PAGE)
    ).all()
    services: dict[int, list[str]] = {row[0]: [] for row in shown}
    if services:
        names = (
            select(change_services.c.change_id, Service.name)
            .join(Service, Service.id == change_services.c.service_id)
            .where(change_services.c.change_id.in_(services))
            .order_by(Service.name)
        )
        for change_id, name in db.session.execute(names):
            services[change_id].append(name)
    return [
        [
            *row[:5],
            None if row[5] is None else row[5].isoformat(),
            None if row[6] is None else row[6].isoformat(),
            *row[7:9],
            services[row[0]],
        ]
        for row in shown
    ]


def inbox(user: User, limit: int = 200) -> list[ChangeRequest]:
    """What waits for `user`'s vote, the longest-waiting first."""
    stmt = (
        visible(select(ChangeRequest), user)
        .where(awaiting_vote(user))
        .options(selectinload(ChangeRequest.services), selectinload(ChangeRequest.votes))
        .order_by(ChangeRequest.submitted_at.asc(), ChangeRequest.id.asc())
        .limit(limit)
    )
    return list(db.session.scalars(stmt))


def inbox_count(user: User) -> int:
    if not may_vote(user):
        return 0
    stmt = visible(select(func.count(ChangeRequest.id)), user).where(awaiting_vote(user))
    return db.session.scalar(stmt) or 0


def waiting_count(user: User) -> int:
    """How many changes wait for `user`'s vote (0 for anyone who cannot vote), for the
    navigation of every page: one count per approver, asked again only after a change or
    a vote was written."""
    if not may_vote(user):
        return 0
    tables = (ChangeVote.__tablename__, ChangeRequest.__tablename__)
    return cache.shared(tables, f"waiting:{user.id}", lambda: inbox_count(user))


@dataclass
class LinkedChange(ChangeLabels):
    """What the ticket page shows of a change linked to the ticket."""

    id: int
    title: str
    type: str
    status: str


def linked_to_ticket(ticket_id: int, user: User) -> list[LinkedChange]:
    """The changes linked to a ticket that `user` may see, oldest first: one query."""
    stmt = (
        select(ChangeRequest.id, ChangeRequest.title, ChangeRequest.type, ChangeRequest.status)
        .join(change_tickets, change_tickets.c.change_id == ChangeRequest.id)
        .where(change_tickets.c.ticket_id == ticket_id)
        .order_by(ChangeRequest.id)
    )
    return [LinkedChange(*row) for row in db.session.execute(visible(stmt, user))]
