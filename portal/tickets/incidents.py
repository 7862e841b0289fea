"""Incidents: severities, the post-incident review and its action items.

A P0 or P1 incident cannot close until its review says what happened (a
timeline), why (a root cause) and what will stop it happening again (action
items, each with an owner and a due date). Action items may become tickets of
their own, linked both ways.
"""

from __future__ import annotations

from datetime import date

from flask import current_app
from sqlalchemy import case, select, update
from sqlalchemy.orm import lazyload, selectinload

from .. import jobs
from ..audits import diff, record
from ..errors import Conflict, Forbidden, ServiceError
from ..extensions import db
from ..timeutil import to_zone, utcnow
from ..users.models import User
from ..web import external_url
from . import services
from .access import visible
from .extra_models import ActionItem, IncidentReview
from .models import OPEN_STATUSES, SEVERITY, Ticket

# The priorities whose incidents are major: P0 and P1.
MAJOR = ("critical", "high")
BANNER_LIMIT = 5
MAX_ID = 2**31 - 1


def needs_review(ticket: Ticket) -> bool:
    return ticket.type == "incident" and ticket.priority in MAJOR


def severity(ticket: Ticket) -> str:
    return SEVERITY.get(ticket.priority, "")


def get_review(ticket: Ticket) -> IncidentReview | None:
    """The ticket's review with its action items (and their owners) loaded."""
    return db.session.scalar(
        select(IncidentReview)
        .where(IncidentReview.ticket_id == ticket.id)
        .options(selectinload(IncidentReview.action_items))
    )


def problems_of(review: IncidentReview | None) -> list[str]:
    """What `review` still lacks (empty when complete), phrased to follow "Missing: "."""
    if review is None:
        return ["a timeline", "a root cause", "at least one action item"]
    problems = []
    if not review.timeline.strip():
        problems.append("a timeline")
    if not review.root_cause.strip():
        problems.append("a root cause")
    if not review.action_items:
        problems.append("at least one action item")
    for item in review.action_items:
        # The columns are required; an owner who has left still owns the item.
        if item.owner_id is None or item.due_on is None:
            problems.append(f"an owner and a due date for “{item.description[:60]}”")
    return problems


def review_problems(ticket: Ticket) -> list[str]:
    return problems_of(get_review(ticket))


def require_review_to_close(ticket: Ticket) -> None:
    """Raise Conflict when a P0/P1 incident has no complete post-incident review."""
    if not needs_review(ticket):
        return
    problems = review_problems(ticket)
    if problems:
        raise Conflict(
            f"A {severity(ticket)} incident closes only after its post-incident review is "
            f"complete. Missing: {', '.join(problems)}."
        )


def _require_incident_worker(ticket: Ticket, actor: User) -> None:
    if not services.can_work(actor):
        raise Forbidden("Only agents and admins write post-incident reviews.")
    if ticket.type != "incident":
        raise Conflict("Only incidents have a post-incident review.")


def save_review(ticket: Ticket, actor: User, timeline: str, root_cause: str) -> IncidentReview:
    """Write or rewrite the review's text. Either part may wait while drafting, not both."""
    _require_incident_worker(ticket, actor)
    if ticket.status == "closed":
        # The review is what the incident was closed on; changing it means reopening.
        raise Conflict("This incident is closed; reopen it to change its review.")
    timeline, root_cause = timeline.strip(), root_cause.strip()
    if not timeline and not root_cause:
        raise ServiceError("Write the timeline or the root cause first.", field="timeline")
    review = get_review(ticket)
    created = review is None
    if review is None:
        review = IncidentReview(ticket_id=ticket.id, author_id=actor.id)
        db.session.add(review)
        before = {"timeline": "", "root_cause": ""}
    else:
        before = {"timeline": review.timeline, "root_cause": review.root_cause}
    after = {"timeline": timeline, "root_cause": root_cause}
    changes = diff(before, after)
    if not created and not changes["after"]:
        return review
    review.timeline, review.root_cause = timeline, root_cause
    record("incident.review_saved", actor, ticket, created=created, **changes)
    jobs.commit()
    return review


def _today_for(user: User) -> date:
    zone = user.timezone or current_app.config["SETTINGS"].TIMEZONE
    now = to_zone(utcnow(), zone)
    assert now is not None
    return now.date()


def add_action_item(
    ticket: Ticket, actor: User, description: str, owner: User | None, due_on: date | None
) -> ActionItem:
    """Add a follow-up with an owner and a due date, starting the review if there is none."""
    _require_incident_worker(ticket, actor)
    description = " ".join(description.split())
    if not description:
        raise ServiceError("Say what needs doing.", field="description")
    if len(description) > 500:
        raise ServiceError("Use at most 500 characters.", field="description")
    if owner is None or not owner.is_active:
        raise ServiceError("Choose an active person as the owner.", field="owner")
    if due_on is None:
        raise ServiceError("Choose a due date.", field="due_on")
    if due_on < _today_for(actor):
        raise ServiceError("The due date cannot be in the past.", field="due_on")
    review = get_review(ticket)
    if review is None:
        review = IncidentReview(ticket_id=ticket.id, author_id=actor.id)
        db.session.add(review)
        db.session.flush()
    item = ActionItem(
        review_id=review.id, description=description, owner_id=owner.id, due_on=due_on
    )
    db.session.add(item)
    db.session.flush()
    record(
        "incident.action_item_added",
        actor,
        ticket,
        item_id=item.id,
        description=description,
        owner_id=owner.id,
        owner=owner.name,
        due_on=due_on,
    )
    jobs.commit()
    return item


def get_action_item(ticket: Ticket, item_id: int) -> ActionItem | None:
    """The item, only if it belongs to this ticket's review."""
    if not 0 < item_id <= MAX_ID:
        return None
    return db.session.scalar(
        select(ActionItem)
        .join(IncidentReview, ActionItem.review_id == IncidentReview.id)
        .where(ActionItem.id == item_id, IncidentReview.ticket_id == ticket.id)
    )


def complete_action_item(item: ActionItem, actor: User) -> None:
    incident = db.session.get_one(Ticket, item.review.ticket_id)
    _require_incident_worker(incident, actor)
    if item.done_at is not None:
        raise Conflict("This action item is already done.")
    item.done_at = utcnow()
    record("incident.action_item_done", actor, incident, item_id=item.id)
    jobs.commit()


def action_item_to_ticket(item: ActionItem, actor: User) -> Ticket:
    """File the item as a ticket of its own and link the two; an item becomes one ticket."""
    incident = db.session.get_one(Ticket, item.review.ticket_id)
    _require_incident_worker(incident, actor)
    if item.ticket_id is not None:
        raise Conflict(f"This action item is already ticket T-{item.ticket_id:06d}.")
    owner = item.owner
    link = external_url("tickets.detail", ticket_id=incident.id)
    description = (
        f"Action item from the post-incident review of "
        f"[{incident.number}]({link}) ({incident.subject}).\n\n"
        f"{item.description}\n\n"
        f"Owner: {owner.name}. Due {item.due_on.isoformat()}."
    )
    # create_ticket commits (and acknowledges by email) on its own; the link is a second step.
    ticket = services.create_ticket(
        requester=actor,
        subject=f"[{incident.number}] {item.description}"[:200],
        description=description,
    )
    # Only the first of two concurrent requests links its ticket.
    linked = db.session.execute(
        update(ActionItem)
        .where(ActionItem.id == item.id, ActionItem.ticket_id.is_(None))
        .values(ticket_id=ticket.id)
        .execution_options(synchronize_session=False)
    )
    if linked.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict(
            f"Someone turned this action item into a ticket at the same moment; "
            f"{ticket.number} was filed as well and can be closed."
        )
    record(
        "incident.action_item_ticketed",
        actor,
        incident,
        item_id=item.id,
        ticket_id=ticket.id,
        ticket=ticket.number,
    )
    jobs.commit()
    db.session.refresh(item)
    return ticket


def open_major_incidents(user: User, limit: int = BANNER_LIMIT) -> list[Ticket]:
    """Open P0/P1 incidents `user` may see, in one query: P0 before P1 (so a P0 is never
    the one left out), newest first within a severity."""
    rank = case({p: i for i, p in enumerate(MAJOR)}, value=Ticket.priority)
    stmt = (
        visible(select(Ticket), user)
        .where(
            Ticket.type == "incident",
            Ticket.priority.in_(MAJOR),
            Ticket.status.in_(OPEN_STATUSES),
        )
        .options(lazyload("*"))
        .order_by(rank, Ticket.created_at.desc(), Ticket.id.desc())
        .limit(limit)
    )
    return list(db.session.scalars(stmt))
