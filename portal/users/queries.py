"""Read-only queries behind the users pages; the list and any export share them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, func, or_, select

from ..paging import Page, paginate
from ..security import Role
from ..timeutil import utcnow
from .models import User

STATUSES = ("active", "locked", "deactivated")


@dataclass(frozen=True)
class UserFilters:
    q: str = ""
    role: str = ""
    status: str = ""
    page: int = 1

    @classmethod
    def from_args(cls, args: Any) -> UserFilters:
        """Read filters from a query string; unknown values are ignored, never an error."""
        role = args.get("role", "")
        status = args.get("status", "")
        try:
            page = max(1, min(int(args.get("page", 1)), 100_000))
        except (TypeError, ValueError):
            page = 1
        return cls(
            q=args.get("q", "").strip()[:100].replace("\x00", ""),
            role=role if role in {r.value for r in Role} else "",
            status=status if status in STATUSES else "",
            page=page,
        )

    def as_args(self, **changes: Any) -> dict[str, Any]:
        values = {"q": self.q, "role": self.role, "status": self.status, "page": self.page}
        values.update(changes)
        return {k: v for k, v in values.items() if v and not (k == "page" and v == 1)}


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def users_query(filters: UserFilters) -> Select[Any]:
    stmt = select(User)
    if filters.q:
        pattern = f"%{_escape_like(filters.q.lower())}%"
        stmt = stmt.where(
            or_(
                func.lower(User.name).like(pattern, escape="\\"),
                User.email.like(pattern, escape="\\"),
            )
        )
    if filters.role:
        stmt = stmt.where(User.role == filters.role)
    now = utcnow()
    if filters.status == "deactivated":
        stmt = stmt.where(User.is_active.is_(False))
    elif filters.status == "locked":
        stmt = stmt.where(User.is_active.is_(True), User.locked_until > now)
    elif filters.status == "active":
        stmt = stmt.where(
            User.is_active.is_(True), or_(User.locked_until.is_(None), User.locked_until <= now)
        )
    return stmt.order_by(func.lower(User.name), User.id)


def list_users(filters: UserFilters) -> Page[User]:
    return paginate(users_query(filters), filters.page)
