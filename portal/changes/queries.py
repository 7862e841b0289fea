"""The change list's query: filters from the query string, sorting and paging. The list,
its htmx fragment and the approver's inbox all start from `visible()`, so no filter
ever widens what a person may see."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, ClassVar

from sqlalchemy import Select, and_, exists, func, or_, select
from sqlalchemy.orm import selectinload

from ..errors import ServiceError
from ..extensions import db
from ..paging import Page, paginate
from ..query_args import QueryArgs, pick, positive_int
from ..security import Permission, role_has
from ..users.models import User
from .access import visible
from .conflicts import to_utc
from .models import STATUSES, TYPES, ChangeRequest, ChangeVote, change_services
from .risk import RISKS

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


def awaiting_vote(user: User) -> Any:
    """The SQL twin of approvals.waiting_on: in review, not the user's own change nor one
    they implement, and no vote from them in the current round."""
    if not (user.is_active and role_has(user.role, Permission.CHANGES_APPROVE)):
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


def list_changes(filters: ChangeFilters, user: User) -> Page[ChangeRequest]:
    """A page of the list: the count, the rows (people joined) and their services."""
    stmt = changes_query(filters, user).options(selectinload(ChangeRequest.services))
    return paginate(stmt, filters.page)


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
    if not role_has(user.role, Permission.CHANGES_APPROVE):
        return 0
    stmt = visible(select(func.count(ChangeRequest.id)), user).where(awaiting_vote(user))
    return db.session.scalar(stmt) or 0
