"""The emails change requests send; each is an Outbox row delivered by a job after the
commit. Times are shown in each recipient's own zone."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from flask import current_app
from werkzeug.routing import BuildError

from .. import mail
from ..timeutil import to_zone
from ..users.models import User
from ..web import external_url
from .models import ChangeRequest


def link(change: ChangeRequest) -> str:
    try:
        return external_url("changes.detail", change_id=change.id)
    except BuildError:
        # Until the changes pages are registered (commands and jobs run without them).
        base = current_app.config["SETTINGS"].BASE_URL.rstrip("/")
        return f"{base}/changes/{change.id}"


def _local(value: datetime | None, user: User) -> str:
    local = to_zone(value, user.timezone or current_app.config["SETTINGS"].TIMEZONE)
    return local.strftime("%Y-%m-%d %H:%M %Z") if local else "—"


def _window(change: ChangeRequest, user: User) -> str:
    if change.window_start is None:
        return "not set"
    return f"{_local(change.window_start, user)} to {_local(change.window_end, user)}"


def _send(to: User | None, subject: str, *paragraphs: str) -> None:
    if to is None or not to.is_active:
        return
    body = "\n\n".join((f"Hello {to.name},", *paragraphs)) + "\n"
    mail.send(to.email, subject, body)


def _summary(change: ChangeRequest, user: User) -> str:
    services = ", ".join(s.name for s in change.services) or "none named"
    return (
        f"{change.number}: {change.title}\n"
        f"Type: {change.type}. Risk: {change.risk} "
        f"(impact {change.impact} × likelihood {change.likelihood}).\n"
        f"Services: {services}\n"
        f"Window: {_window(change, user)}"
    )


def _unique(people: Iterable[User | None]) -> list[User]:
    seen: dict[int, User] = {}
    for person in people:
        if person is not None:
            seen.setdefault(person.id, person)
    return list(seen.values())


def awaiting_approval(change: ChangeRequest, approvers: Iterable[User], needed: str) -> None:
    """To the approvers a change is waiting for."""
    for approver in _unique(approvers):
        _send(
            approver,
            f"[{change.number}] Waiting for your approval: {change.title}",
            f"{change.requester.name} asks for approval of this change. It needs {needed}.",
            _summary(change, approver),
            f"Approve or reject it here: {link(change)}",
        )


def decided(change: ChangeRequest, decision: str, reason: str | None = None) -> None:
    """To the requester, on the decision: approved, pre-approved or rejected."""
    requester = change.requester
    if decision == "rejected":
        _send(
            requester,
            f"[{change.number}] Rejected: {change.title}",
            f"Your change was rejected. Reason: {reason or 'none given'}",
            "Revise it and submit it again; the votes start afresh.",
            link(change),
        )
        return
    how = "pre-approved (standard template)" if decision == "pre-approved" else "approved"
    _send(
        requester,
        f"[{change.number}] Approved: {change.title}",
        f"Your change was {how}. Schedule its window next.",
        _summary(change, requester),
        link(change),
    )


def owners(change: ChangeRequest) -> list[User]:
    return _unique(s.owner for s in change.services)


def scheduled(change: ChangeRequest, rescheduled: bool = False) -> None:
    """To the owners of the affected services."""
    verb = "rescheduled" if rescheduled else "scheduled"
    for owner in owners(change):
        _send(
            owner,
            f"[{change.number}] Change {verb} on your service: {change.title}",
            f"A change to a service you own was {verb}.",
            _summary(change, owner),
            f"Rollback plan:\n{change.rollback_plan}",
            link(change),
        )


def day_before(change: ChangeRequest) -> None:
    for owner in owners(change):
        _send(
            owner,
            f"[{change.number}] Tomorrow: {change.title}",
            "A change to a service you own starts within a day.",
            _summary(change, owner),
            link(change),
        )


def window_open(change: ChangeRequest) -> None:
    """To the implementer (the requester when no one is named yet)."""
    person = change.implementer or change.requester
    _send(
        person,
        f"[{change.number}] Your change window is open: {change.title}",
        "The window for this change has opened; start the implementation when ready.",
        _summary(change, person),
        f"Implementation plan:\n{change.implementation_plan}",
        link(change),
    )
