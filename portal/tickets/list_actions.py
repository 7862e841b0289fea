"""What the ticket list does besides listing: the views people save, and one change
applied to many tickets at once.

A bulk change goes through the same per-ticket services as the ticket page
(services.assign, change_status, update_fields), one ticket at a time, so each
ticket keeps its own field history, SLA events and audit events, and a ticket
the workflow refuses is skipped without holding back the others.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode

from flask import abort
from sqlalchemy import func, select
from werkzeug.datastructures import MultiDict

from .. import jobs
from ..audits import record
from ..errors import ServiceError
from ..extensions import db
from ..users.models import User
from . import services
from .access import visible
from .extra_models import SavedView
from .models import STATUS_LABELS, STATUSES, Ticket
from .queries import TicketFilters
from .setup_models import PRIORITIES, Team

MAX_VIEW_NAME = 80
MAX_VIEWS = 50
# The saved_views.query column.
MAX_QUERY = 1000
BULK_LIMIT = 500
BULK_ACTIONS = ("assign", "status", "priority", "team")
# How many skipped tickets a summary names; a flash message lives in the session cookie.
SKIPPED_SHOWN = 10


# -- saved views ----------------------------------------------------------------------------


def filters_from_query(query: str) -> TicketFilters:
    """The list filters a query string names; anything unrecognised is dropped."""
    try:
        pairs = parse_qsl(query.lstrip("?"), max_num_fields=50)
    except ValueError:  # more fields than any list URL has
        pairs = []
    return TicketFilters.from_args(MultiDict(pairs))


def clean_query(query: str) -> str:
    """The recognised filters of `query`, re-serialised (the page left out): what a
    saved view stores, never the text as sent."""
    filters = filters_from_query(query).as_args(page=1)
    encoded = urlencode(filters)
    # Percent-encoding can make a 200-character search longer than the column.
    while len(encoded) > MAX_QUERY and filters.get("q"):
        filters["q"] = filters["q"][:-10].rstrip()
        encoded = urlencode({k: v for k, v in filters.items() if v})
    return encoded


def views_of(user: User) -> list[SavedView]:
    return list(
        db.session.scalars(
            select(SavedView).where(SavedView.user_id == user.id).order_by(SavedView.name)
        )
    )


def get_view_or_404(view_id: int, user: User) -> SavedView:
    """One's own view; anyone else's is as absent as a missing one (404)."""
    view = db.session.get(SavedView, view_id)
    if view is None or view.user_id != user.id:
        abort(404)
    return view


def save_view(user: User, name: str, query: str) -> SavedView:
    """Save the list's filters under `name`; a view of the same name is replaced."""
    name = name.strip()
    if not name:
        raise ServiceError("Name the view.", field="name")
    if len(name) > MAX_VIEW_NAME:
        raise ServiceError(f"Use at most {MAX_VIEW_NAME} characters.", field="name")
    query = clean_query(query)
    view = db.session.scalar(
        select(SavedView).where(SavedView.user_id == user.id, SavedView.name == name)
    )
    before = None
    if view is None:
        count = db.session.scalar(
            select(func.count()).select_from(SavedView).where(SavedView.user_id == user.id)
        )
        if (count or 0) >= MAX_VIEWS:
            raise ServiceError(f"You have {MAX_VIEWS} saved views; delete one first.", field="name")
        view = SavedView(user_id=user.id, name=name, query=query)
        db.session.add(view)
    else:
        before = view.query
        view.query = query
    db.session.flush()
    data: dict[str, object] = {"name": name, "after": {"query": query}}
    if before is not None:
        data["before"] = {"query": before}
    record("ticket_view.saved", user, view, **data)
    jobs.commit()
    return view


def delete_view(view: SavedView, user: User) -> None:
    record("ticket_view.deleted", user, view, name=view.name, before={"query": view.query})
    db.session.delete(view)
    jobs.commit()


# -- bulk changes ---------------------------------------------------------------------------


@dataclass(frozen=True)
class BulkChange:
    """One change for many tickets: `apply` calls the per-ticket service; `is_done` says
    a ticket already has the value (nothing to change, nothing recorded)."""

    description: str
    apply: Callable[[Ticket, User], None]
    is_done: Callable[[Ticket], bool]


def _choice(action: str, value: str) -> str:
    """The value without its action prefix: the form's options read `team:3`, so that a
    value chosen under one action is never read as another's (a user id as a team id)."""
    prefix, sep, rest = value.partition(":")
    if not sep:
        return value
    if prefix != action:
        raise ServiceError("Choose a value listed under the chosen action.", field="value")
    return rest


def _id(value: str) -> int | None:
    return int(value) if value.isdigit() and len(value) <= 9 else None


def bulk_change(action: str, value: str) -> BulkChange:
    """The change `action` with `value` names, or ServiceError if it names none."""
    if action not in BULK_ACTIONS:
        raise ServiceError("Choose one of the listed actions.", field="action")
    value = _choice(action, value.strip())
    if action == "assign":
        return _assign_change(value)
    if action == "status":
        if value not in STATUSES:
            raise ServiceError("Choose one of the listed statuses.", field="value")
        return BulkChange(
            f"status {STATUS_LABELS[value].lower()}",
            lambda t, actor: services.change_status(t, value, actor),
            lambda t: t.status == value,
        )
    if action == "priority":
        if value not in PRIORITIES:
            raise ServiceError("Choose one of the listed priorities.", field="value")
        return BulkChange(
            f"priority {value}",
            lambda t, actor: services.update_fields(t, actor, priority=value),
            lambda t: t.priority == value,
        )
    team_id = _id(value)
    team = db.session.get(Team, team_id) if team_id else None
    if team is None:
        raise ServiceError("Choose one of the listed teams.", field="value")
    return BulkChange(
        f"team {team.name}",
        lambda t, actor: services.update_fields(t, actor, team=team),
        lambda t: t.team_id == team.id,
    )


def _assign_change(value: str) -> BulkChange:
    if value == "none":
        return BulkChange(
            "unassigned",
            lambda t, actor: services.assign(t, None, actor),
            lambda t: t.assignee_id is None,
        )
    user_id = _id(value)
    assignee = db.session.get(User, user_id) if user_id else None
    if assignee is None or not assignee.is_active or not services.can_work(assignee):
        raise ServiceError("Choose one of the listed people.", field="value")
    return BulkChange(
        f"assigned to {assignee.name}",
        lambda t, actor: services.assign(t, assignee, actor),
        lambda t: t.assignee_id == assignee.id,
    )


@dataclass
class BulkResult:
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def summary(self) -> str:
        """`3 updated, 1 skipped: T-000004 (why)`, naming at most SKIPPED_SHOWN tickets."""
        parts = [f"{len(self.updated)} updated"]
        if self.unchanged:
            parts.append(f"{len(self.unchanged)} unchanged")
        text = ", ".join(parts)
        if self.skipped:
            named = [f"{number} ({reason})" for number, reason in self.skipped[:SKIPPED_SHOWN]]
            more = len(self.skipped) - SKIPPED_SHOWN
            if more > 0:
                named.append(f"and {more} more")
            text += f", {len(self.skipped)} skipped: " + "; ".join(named)
        return text + "."


def bulk_update(ids: Iterable[int], change: BulkChange, actor: User) -> BulkResult:
    """Apply `change` to each ticket `actor` may see among `ids`, in the given order.

    Every ticket is its own unit of work (the services commit): a refusal rolls
    back only that ticket's changes and is reported with the service's message.
    """
    wanted = list(dict.fromkeys(ids))
    found = {
        t.id: t
        for t in db.session.scalars(visible(select(Ticket).where(Ticket.id.in_(wanted)), actor))
    }
    result = BulkResult()
    for ticket_id in wanted:
        number = f"T-{ticket_id:06d}"
        ticket = found.get(ticket_id)
        if ticket is None:
            result.skipped.append((number, "no such ticket"))
            continue
        if change.is_done(ticket):
            result.unchanged.append(number)
            continue
        try:
            change.apply(ticket, actor)
        except ServiceError as exc:
            jobs.rollback()
            result.skipped.append((number, exc.message))
        else:
            result.updated.append(number)
    return result
